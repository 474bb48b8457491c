"""Near-duplicates, labels at ingest, and the library routes, on a library ingested for real
through the tiny random-weight models.

The pair: a kick, and its copy 3 dB quieter, resampled to 48 kHz and stored as 24-bit FLAC.
With these random weights the pair's cosine is 0.9999999 and a re-encode to MP3 0.999995,
while the most similar *different* sound measured (the kick detuned from 50 to 45 Hz) scores
0.9948 and a 70 Hz kick 0.979: the default ``duplicates.min_cosine`` of 0.998 sits between.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soxr
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ingest.job import options_from_settings, run_ingest
from tests.support.api_fixtures import until_ready
from tests.support.audio_factory import chord_loop, hat, kick, tone, write
from timbre.cli import app
from timbre.cli.wiring import build_app, duplicate_rules
from timbre.embedding.embedder import describe_models
from timbre.labels import build_labeller
from timbre.search.duplicates import DuplicateRules, find_duplicates
from timbre.settings import Settings, load_settings
from timbre.store import open_store

SR = 44100


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dups") / "Library"
    original = kick(SR)
    write(root / "Drums" / "Kick_Original.wav", original, SR)
    quieter = soxr.resample(original * 10 ** (-3 / 20), SR, 48000).astype(np.float32)
    write(root / "Backup" / "kick copy.flac", quieter, 48000, subtype="PCM_24")
    write(root / "Drums" / "Other_Kick.wav", kick(SR, pitch_hz=70.0), SR)
    write(root / "Drums" / "Closed_Hat.wav", hat(SR), SR)
    write(root / "Synth" / "Tone.wav", tone(SR, 0.4, 440.0), SR)
    write(root / "Loops" / "Chord_Loop.wav", chord_loop(SR, 4.0), SR)
    return root


def data_settings(bundle: Path, data: Path, library: Path) -> Settings:
    return load_settings(
        data_dir=data,
        models={"bundle": bundle, "threads": 2},
        api={"library_roots": [str(library)], "snapshot_poll_s": 0.2},
        ingest={"progress_interval_s": 0.2},
    )


@pytest.fixture(scope="module")
def indexed(
    library: Path,
    tiny_bundle: Path,
    audio_embedder: Any,
    text_embedder: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Settings:
    settings = data_settings(tiny_bundle, tmp_path_factory.mktemp("data"), library)
    labeller = build_labeller(settings, audio_embedder.info, lambda: text_embedder, free_text=False)
    store = open_store(settings, audio_embedder.info, reindex=True)
    try:
        result = run_ingest(
            settings,
            options_from_settings(settings, (library,)),
            embedder=audio_embedder,
            model=audio_embedder.info,
            store=store,
            labeller=labeller,
        )
    finally:
        store.close()
    assert result.exit_code == 0 and result.summary["counts"]["indexed"] == 6, result.summary
    return settings


def _report(settings: Settings, **rules: Any) -> Any:
    store = open_store(
        settings, load_settings(models=settings.models.model_dump()).models and _info(settings)
    )
    try:
        return find_duplicates(store.live(), _rules(settings, **rules))
    finally:
        store.close()


def _info(settings: Settings) -> Any:
    return describe_models(settings.models)


def _rules(settings: Settings, **override: Any) -> DuplicateRules:
    return replace(duplicate_rules(settings), **override)


def _names(group: Any) -> set[str]:
    return {Path(m.path).name for m in group.members}


def test_the_quieter_resampled_flac_copy_forms_one_group_with_the_kick(indexed: Settings) -> None:
    report = _report(indexed)
    assert report.points == 6
    assert [_names(g) for g in report.groups] == [{"Kick_Original.wav", "kick copy.flac"}]
    group = report.groups[0]
    assert group.min_score >= indexed.duplicates.min_cosine
    # the rule: both lossless, so the higher sample rate (the 48 kHz FLAC) is kept
    kept = next(m for m in group.members if m.id == group.keep)
    assert kept.format == "flac" and kept.sample_rate == 48000 and kept.score == 1.0
    assert report.duplicates == 1


def test_a_looser_threshold_joins_similar_sounds_but_never_other_durations(
    indexed: Settings,
) -> None:
    loose = _report(indexed, min_cosine=0.5)
    names = [_names(g) for g in loose.groups]
    # every 0.4 s one-shot is now within 0.5 of the kick kept; the 0.12 s hat and the 4 s
    # loop are not grouped, whatever their cosine, because their durations disagree
    assert names == [{"Kick_Original.wav", "kick copy.flac", "Other_Kick.wav", "Tone.wav"}]


def test_duration_rule() -> None:
    rules = DuplicateRules(0.99, 0.1, 0.05, 8, 4)
    assert rules.durations_agree(0.4, 0.45) and not rules.durations_agree(0.4, 0.55)
    assert rules.durations_agree(8.0, 8.4) and not rules.durations_agree(8.0, 8.5)
    for d in (0.05, 0.4, 3.0, 16.0):
        low, high = rules.window(d)
        assert rules.durations_agree(d, low + 2e-9) and rules.durations_agree(d, high - 2e-9)
        assert not rules.durations_agree(d, high + 1e-6)
        # below a short sound every shorter one agrees (the window starts at 0)
        assert low == 0.0 or not rules.durations_agree(d, low - 1e-6)


def test_ingest_labels_every_point_and_the_names_keep_their_instrument(
    indexed: Settings,
) -> None:
    store = open_store(indexed, _info(indexed))
    try:
        records = {Path(r.payload["path"]).name: r.payload for r in store.live().scroll()}
    finally:
        store.close()
    assert all(
        p["labels_version"] and p["labels_version"].startswith("vocab-") for p in records.values()
    )
    assert all(p["auto_tags"] == list(p["auto_tag_scores"]) for p in records.values())
    # the names said kick and hat: they win over whatever the random weights say
    assert records["Kick_Original.wav"]["instrument"] == "kick"
    assert records["Kick_Original.wav"]["instrument_source"] == "name"
    assert records["Closed_Hat.wav"]["instrument_source"] == "name"
    # the exact copy in another folder has the same sound, hence the same labels
    assert records["kick copy.flac"]["auto_tags"] == records["Kick_Original.wav"]["auto_tags"]


@contextmanager
def serving(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        until_ready(client)
        yield client


def test_routes_report_duplicates_facets_and_labelled_hits(indexed: Settings) -> None:
    with serving(indexed) as client:
        body = client.get("/v1/duplicates").json()
        assert len(body["groups"]) == 1 and body["duplicates"] == 1, body
        assert body["layers"] == []  # the copy is in another folder: no layer of the kick
        group = body["groups"][0]
        assert {Path(m["path"]).name for m in group["members"]} == {
            "Kick_Original.wav",
            "kick copy.flac",
        }
        assert (
            group["keep"] in {m["id"] for m in group["members"]} and "lossless" in body["keep_rule"]
        )
        assert all(
            {"score", "duration_s", "format", "paths", "sample_rate"} <= set(m)
            for m in group["members"]
        )
        filt = json.dumps({"kind": "one_shot"})
        fields = ["instrument", "format", "category", "auto_tags"]
        facets = client.get("/v1/facets", params={"field": fields, "filter": filt}).json()
        assert facets["total"] == 5  # every one-shot, the loop left out
        assert list(facets["facets"]) == fields
        formats = {v["value"]: v["count"] for v in facets["facets"]["format"]}
        assert formats == {"wav": 4, "flac": 1}
        instruments = {v["value"]: v["count"] for v in facets["facets"]["instrument"]}
        assert instruments["kick"] >= 2 and instruments.get("hat") == 1
        assert client.get("/v1/facets").json()["total"] == 6  # all fields, no filter
        # labels travel with every hit, from FAISS (unfiltered) and Qdrant (filtered) alike
        for search in ({}, {"filter": {"kind": "one_shot"}}):
            hits = client.post("/v1/search/text", json={"query": "kick", **search}).json()
            assert hits["hits"] and all(h["labels_version"] for h in hits["hits"]), hits
            assert all("category" in h and "auto_tags" in h for h in hits["hits"])
        # auto tags filter case-insensitively, and the facet count is the number of hits
        tag = facets["facets"]["auto_tags"][0]
        found = client.post(
            "/v1/search/text",
            json={
                "query": "kick",
                "top_k": 50,
                "filter": {"auto_tags": [tag["value"].upper()], "kind": "one_shot"},
            },
        ).json()
        assert len(found["hits"]) == tag["count"]
        assert all(tag["value"] in h["auto_tags"] for h in found["hits"])
        for bad in (
            {"field": "path"},
            {"filter": "{not json"},
            {"filter": json.dumps({"colour": "red"})},
            {"limit": 0},
            {"limit": 10_000},
        ):
            response = client.get("/v1/facets", params=bad)
            assert response.status_code == 422, (bad, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
        assert client.get("/v1/duplicates", params={"min_cosine": 2}).status_code == 422


def test_an_items_near_duplicates_for_a_details_view(indexed: Settings) -> None:
    with serving(indexed) as client:
        everything = client.post("/v1/browse", json={"top_k": 50}).json()["hits"]
        ids = {Path(h["path"]).name: h["id"] for h in everything}
        pair = ("Kick_Original.wav", "kick copy.flac")
        for name, other in (pair, pair[::-1]):
            body = client.get(f"/v1/items/{ids[name]}/duplicates").json()
            assert [Path(h["path"]).name for h in body["hits"]] == [other], body
            assert body["hits"][0]["score"] >= body["min_cosine"] == 0.998
            # Both are lossless; the 48 kHz copy has the higher rate, so it is the one to keep.
            assert body["keep"] == ids["kick copy.flac"]
        alone = client.get(f"/v1/items/{ids['Other_Kick.wav']}/duplicates").json()
        assert alone["hits"] == [] and alone["keep"] == ids["Other_Kick.wav"]
        missing = client.get("/v1/items/00000000-0000-0000-0000-000000000000/duplicates")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")


def test_cli_prints_a_table_and_json(indexed: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMBRE_DATA_DIR", str(indexed.data_dir))
    monkeypatch.setenv("TIMBRE_MODELS__BUNDLE", str(indexed.models.bundle))
    runner = CliRunner()
    table = runner.invoke(app, ["duplicates"])
    assert table.exit_code == 0, table.output
    assert "group 1: 2 samples" in table.stdout and "keep" in table.stdout
    assert table.stdout.startswith("Each group is one sound stored more than once")
    assert "1 groups, 1 duplicates among 6 samples" in table.stdout
    raw = runner.invoke(app, ["duplicates", "--json", "--min-cosine", "0.5"])
    assert raw.exit_code == 0, raw.output
    assert len(json.loads(raw.stdout)["groups"][0]["members"]) == 4


def test_cli_relabel_reports_then_relabels_with_a_new_vocabulary(
    indexed: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TIMBRE_DATA_DIR", str(indexed.data_dir))
    monkeypatch.setenv("TIMBRE_MODELS__BUNDLE", str(indexed.models.bundle))
    runner = CliRunner()
    dry = runner.invoke(app, ["relabel", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.stdout)
    # the ingest labelled with this very vocabulary: nothing would change
    assert report["points"] == 6 and report["changed"] == 0 and report["dry_run"]
    assert set(report["best_scores"]) == {"min", "p10", "p50", "p90", "max"}
    only_two = tmp_path / "two.yaml"
    only_two.write_text(
        "version: 1\ncategories:\n  thud: {prompts: [a dull thud]}\n"
        "  shimmer: {prompts: [a shimmering sound]}\n"
    )
    new = runner.invoke(app, ["relabel", "--vocabulary", str(only_two)])
    assert new.exit_code == 0, new.output
    body = json.loads(new.stdout)
    assert body["changed"] == 6 and body["snapshot"]["count"] == 6
    store = open_store(indexed, _info(indexed))
    try:
        payloads = [r.payload for r in store.live().scroll()]
    finally:
        store.close()
    assert {p["labels_version"] for p in payloads} == {body["labels_version"]}
    assert all(p["category"] in (None, "thud", "shimmer") for p in payloads)
    assert all(set(p["auto_tags"]) <= {"thud", "shimmer"} for p in payloads)


def test_cli_reanalyse_reports_and_exports_only_what_it_changed(
    indexed: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMBRE_DATA_DIR", str(indexed.data_dir))
    monkeypatch.setenv("TIMBRE_MODELS__BUNDLE", str(indexed.models.bundle))
    runner = CliRunner()
    dry = runner.invoke(app, ["reanalyse", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.stdout)
    # the ingest analysed every point with the current analysis: nothing to do
    assert report["points"] == 6 and report["current"] == 6 and report["analysed"] == 0
    assert report["dry_run"] and "snapshot" not in report
    again = runner.invoke(app, ["reanalyse", "--all"])
    assert again.exit_code == 0, again.output
    body = json.loads(again.stdout)
    assert body["points"] == 6 and body["analysed"] == 6 and body["failed"] == 0
    assert ("snapshot" in body) == (body["changed"] > 0)
    if body["changed"]:
        assert body["snapshot"]["count"] == 6
