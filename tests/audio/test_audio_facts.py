"""Facts from the sound in the payload: names and tags win, the audio fills the gaps, every
fact says where it came from, and a point built from cached features carries the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mutagen.flac
import numpy as np
import pytest

from app.schemas import HitOut
from ingest.metadata import MetadataRules
from ingest.options import Limits
from ingest.workers import prepare
from tests.support.audio_factory import write
from tests.support.synthetic_music import chord_loop, drum_loop, noise_loop, one_shot
from timbre.audio.analysis import ANALYSIS_VERSION
from timbre.audio.peaks import PEAK_BUCKETS, decode_peaks
from timbre.settings import Settings
from timbre.store import DISPLAY_FIELDS

LIMITS = Limits(sample_rate=24000, max_duration_s=600, max_file_bytes=1 << 30)


@pytest.fixture(scope="module")
def rules(settings: Settings) -> MetadataRules:
    return MetadataRules.from_settings(settings.ingest)


def _prepare(path: Path, rules: MetadataRules, *, keep_samples: bool = True) -> dict[str, Any]:
    item = prepare("0" * 64, [(str(path), str(path.parent))], LIMITS, rules, keep_samples)
    assert item.failure is None, item.failure
    return item.payload


def test_a_neutrally_named_drum_loop_gets_its_bpm_from_the_audio_and_no_key(
    tmp_path: Path, rules: MetadataRules
) -> None:
    path = write(tmp_path / "take_017.wav", drum_loop(124, 4, 44100, seed=2), 44100)
    payload = _prepare(path, rules)
    assert payload["kind"] == "loop"
    assert (payload["bpm"], payload["bpm_source"]) == (124.0, "audio")
    assert 0 < payload["bpm_confidence"] <= 1
    assert payload["key"] is None and payload["key_source"] is None
    assert payload["key_confidence"] is None
    assert payload["analysis_version"] == ANALYSIS_VERSION
    assert decode_peaks(payload["peaks"]).shape == (PEAK_BUCKETS,)


def test_a_neutrally_named_chord_loop_gets_its_key_from_the_audio(
    tmp_path: Path, rules: MetadataRules
) -> None:
    path = write(tmp_path / "idea 3.flac", chord_loop("Eb", 96, 4, 48000, stabs=True), 48000)
    payload = _prepare(path, rules)
    assert (payload["key"], payload["key_source"]) == ("Eb", "audio")
    assert 0 < payload["key_confidence"] <= 1
    assert (payload["bpm"], payload["bpm_source"]) == (96.0, "audio")


def test_names_win_over_the_audio_and_carry_no_confidence(
    tmp_path: Path, rules: MetadataRules
) -> None:
    """The audio says 124 BPM and G minor; the name says otherwise and is believed."""
    sound = 0.7 * chord_loop("Gm", 124, 4, 44100, seed=1) + 0.3 * drum_loop(124, 4, 44100)
    path = write(tmp_path / "Groove_126bpm_Am_loop.wav", sound.astype(np.float32), 44100)
    payload = _prepare(path, rules)
    bpm = (payload["bpm"], payload["bpm_source"], payload["bpm_confidence"])
    key = (payload["key"], payload["key_source"], payload["key_confidence"])
    assert bpm == (126, "name", None) and key == ("Am", "name", None)
    assert payload["peaks"] is not None  # peaks come from the audio whatever the names say


def test_the_files_own_tags_win_over_names_and_audio(tmp_path: Path, rules: MetadataRules) -> None:
    path = write(tmp_path / "Loop_120bpm.flac", drum_loop(124, 4, 44100, seed=3), 44100)
    tags = mutagen.flac.FLAC(path)
    tags["BPM"] = "123"
    tags["INITIALKEY"] = "F# minor"
    tags.save()
    payload = _prepare(path, rules)
    assert (payload["bpm"], payload["bpm_source"], payload["bpm_confidence"]) == (123, "tags", None)
    assert (payload["key"], payload["key_source"]) == ("F#m", "tags")


def test_a_one_shot_never_gets_a_bpm(tmp_path: Path, rules: MetadataRules) -> None:
    """Two bars of a steady pulse that the name calls a one-shot: no tempo is asked."""
    path = write(tmp_path / "Snare Roll One Shot.wav", drum_loop(174, 2, 44100), 44100)
    payload = _prepare(path, rules)
    assert payload["kind"] == "one_shot"
    assert payload["bpm"] is None and payload["bpm_source"] is None


@pytest.mark.parametrize(("bpm", "bars"), [(120, 1), (124, 2)])
def test_a_short_unnamed_loop_is_told_by_its_pulse(
    tmp_path: Path, rules: MetadataRules, bpm: int, bars: int
) -> None:
    """Under the 4 s the duration rule wants, whole bars of a steady pulse make a loop."""
    path = write(tmp_path / "take_5.wav", drum_loop(bpm, bars, 44100, seed=bars), 44100)
    payload = _prepare(path, rules)
    assert (payload["kind"], payload["bpm"], payload["bpm_source"]) == ("loop", bpm, "audio")


def test_a_short_unnamed_hit_stays_a_one_shot(tmp_path: Path, rules: MetadataRules) -> None:
    hit = np.concatenate([one_shot("snare", 44100), np.zeros(44100, dtype=np.float32)])
    payload = _prepare(write(tmp_path / "take_6.wav", hit, 44100), rules)
    assert payload["kind"] == "one_shot" and payload["bpm"] is None


@pytest.mark.parametrize(
    ("name", "samples"),
    [
        ("texture_04.wav", noise_loop(6.0, 44100)),
        ("hit_12.wav", one_shot("kick", 44100)),
        ("blip.wav", one_shot("pluck", 44100, seed=5)),
    ],
)
def test_noise_drums_and_single_notes_get_no_key(
    tmp_path: Path, rules: MetadataRules, name: str, samples: np.ndarray
) -> None:
    payload = _prepare(write(tmp_path / name, samples, 44100), rules)
    assert payload["key"] is None and payload["key_source"] is None
    assert payload["analysis_version"] == ANALYSIS_VERSION  # analysed, and nothing claimed


def test_what_the_names_call_a_drum_is_never_given_a_key(
    tmp_path: Path, rules: MetadataRules
) -> None:
    """Ringing cymbals and toms look tonal to the key detector; the name rules them out."""
    sound = chord_loop("Eb", 96, 2, 44100, stabs=True)
    heard = _prepare(write(tmp_path / "idea 4.wav", sound, 44100), rules)
    assert heard["key"] == "Eb"
    ride = _prepare(write(tmp_path / "Ride 4.wav", sound, 44100), rules)
    assert ride["instrument"] == "cymbal" and "cymbal" in rules.unpitched
    assert (ride["key"], ride["key_source"]) == (None, None)
    assert ride["analysis_version"] == ANALYSIS_VERSION and ride["bpm_source"] == "audio"


def test_cached_features_still_get_the_facts_from_the_decoded_audio(
    tmp_path: Path, rules: MetadataRules
) -> None:
    """With MERT features cached the samples are not sent back, but the audio is still
    decoded and analysed: the payload is the same as a fresh one."""
    path = write(tmp_path / "take_2.wav", drum_loop(140, 4, 44100, seed=8), 44100)
    fresh = prepare("0" * 64, [(str(path), str(tmp_path))], LIMITS, rules, True)
    cached = prepare("0" * 64, [(str(path), str(tmp_path))], LIMITS, rules, False)
    assert fresh.samples is not None and cached.samples is None
    assert cached.payload == fresh.payload
    assert cached.payload["bpm_source"] == "audio" and cached.payload["peaks"]


def test_an_analysis_fault_loses_the_facts_not_the_file(
    tmp_path: Path, rules: MetadataRules, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.workers

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("injected fault")

    monkeypatch.setattr(ingest.workers, "analyse", broken)
    path = write(tmp_path / "take_9.wav", drum_loop(124, 4, 44100), 44100)
    payload = _prepare(path, rules)
    assert payload["duration_s"] > 0 and payload["kind"] == "loop"
    assert payload["bpm"] is None and payload["analysis_version"] is None
    assert payload["peaks"] is None


def test_every_display_field_reaches_the_http_hit() -> None:
    """Hits from FAISS and from Qdrant both carry DISPLAY_FIELDS; HitOut must drop none."""
    assert set(DISPLAY_FIELDS) <= set(HitOut.model_fields)
