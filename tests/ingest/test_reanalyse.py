"""``timbre reanalyse``: points indexed before the audio analysis get its facts from their files,
as a fresh ingest would give them, without touching vectors, labels or stated values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mutagen.flac
import numpy as np
import pytest

from ingest.metadata import AudioFacts, MetadataRules, describe
from ingest.options import Limits
from ingest.reanalyse import AUDIO_FIELDS, reanalyse
from ingest.tags import read_tags
from ingest.workers import prepare
from tests.support.audio_factory import strum, write
from tests.support.store_factory import model_info, new_client, open_test_store, unit_vectors
from tests.support.synthetic_music import chord_loop, drum_loop, one_shot
from timbre.audio.analysis import ANALYSIS_VERSION
from timbre.audio.decode import decode_file
from timbre.settings import Settings
from timbre.store import Point, SearchFilter, build_payload

LIMITS = Limits(sample_rate=24000, max_duration_s=600, max_file_bytes=1 << 30)
OLD_ONLY = ("bpm_source", "bpm_confidence", "key_source", "key_confidence")


def _old_payload(path: Path, rules: MetadataRules, sha: str) -> dict[str, Any]:
    """What ingest wrote before the audio analysis: names and tags only, no sources."""
    audio = decode_file(path, sample_rate=24000, max_duration_s=600, max_file_bytes=1 << 30)
    facts = AudioFacts(audio.duration_s, audio.source_sample_rate, audio.channels, audio.format)
    descriptive = describe(path, path.parent, facts, read_tags(path), rules)
    descriptive.update(dict.fromkeys(OLD_ONLY))
    return build_payload(descriptive, content_sha256=sha, paths=[str(path)], model=model_info())


@pytest.fixture
def library(tmp_path: Path) -> dict[str, Path]:
    sr = 44100
    tagged = write(tmp_path / "Loop_120bpm.flac", drum_loop(124, 4, sr, seed=3), sr)
    tags = mutagen.flac.FLAC(tagged)
    tags["BPM"] = "123"
    tags.save()
    return {
        "drums": write(tmp_path / "take_017.wav", drum_loop(124, 4, sr, seed=2), sr),
        "chords": write(
            tmp_path / "idea 3.flac", chord_loop("Eb", 96, 4, 48000, stabs=True), 48000
        ),
        "named": write(tmp_path / "Pad_Am_90bpm_loop.wav", chord_loop("Gm", 124, 4, sr), sr),
        "tagged": tagged,
        "kick": write(tmp_path / "kick_01.wav", one_shot("kick", sr), sr),
        # tonal enough for a key, but the name calls it a drum: never asked
        "ride": write(tmp_path / "Ride_2.wav", chord_loop("C", 120, 2, sr), sr),
        "gone": write(tmp_path / "take_099.wav", drum_loop(140, 4, sr), sr),
    }


@pytest.mark.parametrize("adapter", ["edge", "memory"])
def test_reanalyse_fills_the_audio_facts_of_old_points_once(
    adapter: str, tmp_path: Path, settings: Settings, library: dict[str, Path]
) -> None:
    rules = MetadataRules.from_settings(settings.ingest)
    shas = {name: f"{i:064x}" for i, name in enumerate(library, start=1)}
    old = {name: _old_payload(path, rules, shas[name]) for name, path in library.items()}
    vectors = unit_vectors(np.random.default_rng(0), len(library))
    points = {name: Point.of(v, old[name]) for name, v in zip(library, vectors, strict=True)}
    ids = {name: p.id for name, p in points.items()}
    library["gone"].unlink()
    client = new_client(adapter) if adapter != "edge" else None
    store = open_test_store(adapter, tmp_path / "data", model_info(), client=client)
    try:
        store.live().upsert(points.values())
        before = {r.id: r.vector for r in store.live().scroll(with_vectors=True)}
        report = reanalyse(store, LIMITS, batch_size=4, unpitched=rules.unpitched)
        assert (report.points, report.analysed, report.failed) == (7, 6, 1)
        assert report.failures[0]["id"] == ids["gone"]
        assert (report.gained_bpm, report.gained_key) == (2, 1)  # drums, chords; chords
        now = {name: store.live().retrieve([ids[name]])[0].payload for name in library}

        def facts(name: str, fact: str) -> tuple[Any, Any]:
            return now[name][fact], now[name][f"{fact}_source"]

        assert facts("drums", "bpm") == (124.0, "audio") and facts("drums", "key") == (None, None)
        assert facts("chords", "key") == ("Eb", "audio") and facts("chords", "bpm")[1] == "audio"
        # values stated before sources existed are kept, and their source is re-derived
        assert facts("named", "bpm") == (90.0, "name") and facts("named", "key") == ("Am", "name")
        assert now["named"]["bpm_confidence"] is None
        assert facts("tagged", "bpm") == (123.0, "tags")
        assert facts("kick", "bpm") == (None, None) and now["kick"]["kind"] == "one_shot"
        assert facts("ride", "key") == (None, None) and now["ride"]["instrument"] == "cymbal"
        assert all(now[n]["analysis_version"] == ANALYSIS_VERSION for n in library if n != "gone")
        assert all(now[n]["peaks"] for n in library if n != "gone")
        # unreadable: left exactly as it was
        assert {k: now["gone"][k] for k in AUDIO_FIELDS} == {
            k: old["gone"][k] for k in AUDIO_FIELDS
        }
        # the fields ingest would give them now, from the same rules
        for name in ("drums", "chords", "named", "tagged", "kick", "ride"):
            fresh = prepare(shas[name], [(str(library[name]), str(tmp_path))], LIMITS, rules, False)
            assert {k: now[name][k] for k in AUDIO_FIELDS} == {
                k: fresh.payload[k] for k in AUDIO_FIELDS
            }, name
        # filters see the new facts: the companions were derived (Eb = D#), the ranges indexed
        assert {r.id for r in store.live().scroll(filter=SearchFilter(key=("d#",)))} == {
            ids["chords"]
        }
        in_range = store.live().scroll(filter=SearchFilter(bpm_min=123.5, bpm_max=124.5))
        assert {r.id for r in in_range} == {ids["drums"]}
        # vectors and labels are never written
        after = {r.id: r.vector for r in store.live().scroll(with_vectors=True)}
        assert all(np.array_equal(before[i], after[i]) for i in before)
        assert {p["labels_version"] for p in now.values()} == {None}
        # a second run finds everything current (the unreadable one is tried again)
        again = reanalyse(store, LIMITS, batch_size=4, unpitched=rules.unpitched)
        assert (again.current, again.analysed, again.changed, again.failed) == (6, 0, 0, 1)
    finally:
        store.close()


def test_dry_run_writes_nothing(
    tmp_path: Path, settings: Settings, library: dict[str, Path]
) -> None:
    rules = MetadataRules.from_settings(settings.ingest)
    payload = _old_payload(library["drums"], rules, "a" * 64)
    store = open_test_store("memory", tmp_path / "data", model_info())
    try:
        store.live().upsert([Point.of(unit_vectors(np.random.default_rng(1), 1)[0], payload)])
        report = reanalyse(store, LIMITS, batch_size=8, dry_run=True)
        assert report.changed == 1 and report.gained_bpm == 1 and report.dry_run
        assert next(iter(store.live().scroll())).payload["bpm"] is None
    finally:
        store.close()


def test_reanalyse_rederives_the_name_facts_of_an_existing_index(
    tmp_path: Path, settings: Settings
) -> None:
    """An index written by the old name rules (a genre found inside "belofilms", no instrument
    for kit abbreviations, the minor of "Gsharp minor7b5" lost, SoX's stamp as a tag, a long
    strum called a loop) is corrected in place; vectors stay."""
    rules = MetadataRules.from_settings(settings.ingest)
    root = tmp_path / "library"
    kit = root / "belofilms_GuitarStrums"
    strummed = write(kit / "Gsharp minor7b5_DOWN_02.flac", strum(6.0), 44100)
    snare = write(root / "BJA_Pacific" / "SN_06.wav", one_shot("snare", 44100), 44100)
    wrong = {
        "strum": (
            strummed,
            {"genre": "hip hop", "key": "G#", "key_source": "name", "kind": "loop"},
        ),
        "snare": (snare, {"instrument": None, "key": "C#m", "key_source": "audio"}),
    }
    points, ids = [], {}
    for i, (name, (path, old_facts)) in enumerate(wrong.items()):
        audio = decode_file(path, sample_rate=24000, max_duration_s=600, max_file_bytes=1 << 30)
        facts = AudioFacts(audio.duration_s, audio.source_sample_rate, audio.channels, "FLAC")
        descriptive = describe(path, root, facts, read_tags(path), rules)
        descriptive.update(old_facts, tags=["processed by sox"])
        descriptive["analysis_version"] = ANALYSIS_VERSION  # current: names alone are wrong
        payload = build_payload(
            descriptive, content_sha256=f"{i + 1:064x}", paths=[str(path)], model=model_info()
        )
        point = Point.of(unit_vectors(np.random.default_rng(i), 1)[0], payload)
        points.append(point)
        ids[name] = point.id
    store = open_test_store("memory", tmp_path / "data", model_info())
    try:
        store.live().upsert(points)
        report = reanalyse(store, LIMITS, batch_size=8, rules=rules, roots=[root])
        now = {name: store.live().retrieve([ids[name]])[0].payload for name in ids}
        strum_now, snare_now = now["strum"], now["snare"]
        assert strum_now.get("genre") is None and strum_now["instrument"] == "guitar"
        assert (strum_now["key"], strum_now["key_source"]) == ("G#m", "name")
        assert (strum_now["kind"], strum_now["kind_source"]) == ("one_shot", "audio")
        assert strum_now["tags"] == [] and strum_now["pack"] == "belofilms_GuitarStrums"
        assert (snare_now["instrument"], snare_now["instrument_source"]) == ("snare", "name")
        # a name-derived drum is never asked a key; the old audio key is heard again and goes
        assert (snare_now.get("key"), snare_now.get("key_source")) == (None, None)
        assert report.renamed["genre"] == 1 and report.renamed["instrument"] == 1
        again = reanalyse(store, LIMITS, batch_size=8, rules=rules, roots=[root])
        assert (again.changed, again.analysed, again.current) == (0, 0, 2)
    finally:
        store.close()
