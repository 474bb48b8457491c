"""The ingest job end to end on a generated library: metadata, failures, idempotency, moves,
copies, pruning, shards, dry runs, profiles and the feature cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ingest.synthetic import Library, make_library
from tests.support.ingest_helpers import ingest, job_settings, read_store
from timbre.store import point_id


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    return make_library(
        tmp_path_factory.mktemp("lib") / "Samples",
        one_shots_per_pack=18,
        loops_per_pack=4,
        loop_bars=(1, 2),
    )


@pytest.fixture(scope="module")
def indexed(
    library: Library, tiny_bundle: Path, audio_embedder, tmp_path_factory: pytest.TempPathFactory
):  # type: ignore[no-untyped-def]
    """One full run over the library, shared by the read-only tests below."""
    settings = job_settings(tiny_bundle, tmp_path_factory.mktemp("data"))
    result = ingest(settings, audio_embedder, [library.root])
    return settings, result


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_everything_decodable_is_indexed_with_its_metadata(
    library: Library, indexed, audio_embedder
) -> None:  # type: ignore[no-untyped-def]
    settings, result = indexed
    counts = result.summary["counts"]
    assert counts["discovered"] == len(library.files) + len(library.broken)
    assert counts["indexed"] == len(library.files)
    points = read_store(settings, audio_embedder)
    assert len(points) == len(library.files)
    for path, expected in library.files.items():
        payload, vector = points[point_id(_sha(path))]
        assert payload["path"] == str(path) and payload["paths"] == [str(path)]
        assert payload["pack"] == expected.pack
        assert payload["genre"] == expected.genre, path
        assert payload["instrument"] == expected.instrument, path
        assert payload["kind"] == expected.kind, path
        assert payload["bpm"] == expected.bpm, path
        assert payload["key"] == expected.key, path
        assert payload["duration_s"] == pytest.approx(expected.duration_s, abs=0.08)
        assert payload["pipeline_version"] == audio_embedder.info.pipeline_version
        assert payload["model"]["mert"] == audio_embedder.info.mert
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_vectors_equal_embedding_the_file_directly(
    library: Library, indexed, audio_embedder
) -> None:  # type: ignore[no-untyped-def]
    from timbre.audio.decode import decode_file

    settings, _ = indexed
    points = read_store(settings, audio_embedder)
    for path in list(library.files)[:6]:
        decoded = decode_file(path, sample_rate=24000, max_duration_s=600, max_file_bytes=10**9)
        expected = audio_embedder.embed([decoded.samples])[0]
        np.testing.assert_allclose(points[point_id(_sha(path))][1], expected, atol=1e-5)


def test_every_broken_file_is_reported_with_a_reason(library: Library, indexed) -> None:  # type: ignore[no-untyped-def]
    _, result = indexed
    assert result.exit_code == 1  # finished, with failed files
    report = Path(result.summary["failures"]["report"])
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    by_path = {row["path"]: row for row in rows}
    assert set(by_path) == {str(p) for p in library.broken}
    for path, code in library.broken.items():
        row = by_path[str(path)]
        assert row["error_type"] == code and row["message"] and row["stage"] == "decode"


def test_summary_and_snapshot(indexed, library: Library) -> None:  # type: ignore[no-untyped-def]
    settings, result = indexed
    summary = result.summary
    assert summary["snapshot"]["count"] == len(library.files)
    assert {"discover", "hash", "lookup", "mert", "tower", "upsert", "optimize", "snapshot"} <= set(
        summary["stage_seconds"]
    )
    assert summary["throughput"]["files_per_s"] > 0
    saved = list((settings.data_dir / "reports").glob("*-summary.json"))
    assert len(saved) == 1


def _fresh(library: Library, tmp_path: Path) -> Path:
    """A private copy of the library, for tests that change files."""
    root = tmp_path / "Samples"
    shutil.copytree(library.root, root)
    return root


def test_rerun_recomputes_nothing(
    library: Library, tiny_bundle: Path, audio_embedder, tmp_path: Path
) -> None:
    root = _fresh(library, tmp_path)
    settings = job_settings(tiny_bundle, tmp_path / "data")
    first = ingest(settings, audio_embedder, [root])
    before = read_store(settings, audio_embedder)
    again = ingest(settings, audio_embedder, [root])
    counts = again.summary["counts"]
    assert counts["already_indexed"] == len(library.files)
    assert counts["indexed"] == 0 and counts["to_embed"] == len(library.broken)
    assert "mert" not in again.summary["stage_seconds"]  # no model work at all
    after = read_store(settings, audio_embedder)
    assert set(after) == set(before)
    assert first.summary["counts"]["indexed"] == len(library.files)
    # Nothing was written, so the snapshot that holds it all is kept, not exported again.
    assert again.summary["snapshot"] == {**first.summary["snapshot"], "unchanged": True}
    assert sorted(p.name for p in (settings.data_dir / "snapshots").iterdir() if p.is_dir()) == [
        first.summary["snapshot"]["name"]
    ]


def test_rehash_finds_a_file_rewritten_with_the_same_size_and_mtime(
    tiny_bundle: Path, audio_embedder, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import os

    import soundfile as sf

    from tests.support.audio_factory import kick

    root = tmp_path / "Samples"
    root.mkdir()
    path = root / "Kick_01.wav"
    sf.write(path, kick(44100, 0.3, pitch_hz=50.0), 44100)
    settings = job_settings(tiny_bundle, tmp_path / "data")
    ingest(settings, audio_embedder, [root], snapshot=False)
    st = path.stat()
    sf.write(path, kick(44100, 0.3, pitch_hz=80.0), 44100)  # same length, other sound
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size
    missed = ingest(settings, audio_embedder, [root], snapshot=False)
    assert missed.summary["counts"]["indexed"] == 0  # the documented blind spot
    found = ingest(settings, audio_embedder, [root], snapshot=False, rehash=True)
    assert found.summary["counts"]["rehashed_changed"] == 1
    assert found.summary["counts"]["indexed"] == 1
    assert point_id(_sha(path)) in read_store(settings, audio_embedder)


def test_copy_rename_and_prune(
    library: Library, tiny_bundle: Path, audio_embedder, tmp_path: Path
) -> None:
    root = _fresh(library, tmp_path)
    settings = job_settings(tiny_bundle, tmp_path / "data")
    ingest(settings, audio_embedder, [root])
    original = sorted(p for p in root.rglob("*.wav") if "Kick_Punchy" in p.name)[0]
    pid = point_id(_sha(original))
    copy = original.with_name("Kick_Copy_01.wav")
    shutil.copyfile(original, copy)
    renamed = original.with_name("Kick_Renamed_02.wav")
    original.rename(renamed)

    result = ingest(settings, audio_embedder, [root])
    assert result.summary["counts"]["indexed"] == 0  # no duplicate, nothing re-embedded
    points = read_store(settings, audio_embedder)
    assert len(points) == len(library.files)
    assert points[pid][0]["paths"] == sorted([str(original), str(copy), str(renamed)])

    result = ingest(settings, audio_embedder, [root], prune=True)
    assert result.summary["counts"]["pruned_paths"] == 1
    points = read_store(settings, audio_embedder)
    assert points[pid][0]["paths"] == sorted([str(copy), str(renamed)])
    assert points[pid][0]["path"] == min(str(copy), str(renamed))

    # Delete every copy of a content: its point goes away.
    copy.unlink()
    renamed.unlink()
    result = ingest(settings, audio_embedder, [root], prune=True)
    assert result.summary["counts"]["deleted_points"] == 1
    assert pid not in read_store(settings, audio_embedder)


def test_prune_leaves_other_roots_alone(
    library: Library, tiny_bundle: Path, audio_embedder, tmp_path: Path
) -> None:
    root = _fresh(library, tmp_path)
    settings = job_settings(tiny_bundle, tmp_path / "data")
    pack_a, pack_b = sorted(p for p in root.iterdir() if p.is_dir())[:2]
    ingest(settings, audio_embedder, [pack_a, pack_b])
    total = len(read_store(settings, audio_embedder))
    result = ingest(settings, audio_embedder, [pack_a], prune=True)  # pack_b is not a root now
    assert result.summary["counts"]["pruned_paths"] == 0
    assert len(read_store(settings, audio_embedder)) == total


def test_shards_cover_the_library_exactly_once(
    library: Library, tiny_bundle: Path, audio_embedder, tmp_path: Path, indexed
) -> None:  # type: ignore[no-untyped-def]
    full = set(read_store(indexed[0], audio_embedder))
    seen: list[set[str]] = []
    for index in range(3):
        settings = job_settings(tiny_bundle, tmp_path / f"data{index}")
        result = ingest(settings, audio_embedder, [library.root], shard=(index, 3), snapshot=False)
        assert result.summary["counts"]["other_shards"] > 0
        seen.append(set(read_store(settings, audio_embedder)))
    assert set.union(*seen) == full
    assert sum(len(s) for s in seen) == len(full)  # pairwise disjoint


def test_dry_run_writes_nothing(
    library: Library, tiny_bundle: Path, audio_embedder, tmp_path: Path
) -> None:
    settings = job_settings(tiny_bundle, tmp_path / "data")
    result = ingest(settings, audio_embedder, [library.root], dry_run=True)
    assert result.summary["counts"]["to_embed"] == len(library.files) + len(library.broken)
    assert result.summary["counts"]["indexed"] == 0
    assert not (settings.data_dir / "snapshots").exists()
    assert not (settings.data_dir / "cache").exists()
    assert not (settings.data_dir / "reports").exists()
    assert read_store(settings, audio_embedder) == {}


def test_sequential_profile_gives_the_same_store(
    library: Library, tiny_bundle: Path, audio_embedder, tmp_path: Path, indexed
) -> None:  # type: ignore[no-untyped-def]
    settings = job_settings(tiny_bundle, tmp_path / "data")
    result = ingest(settings, audio_embedder, [library.root], profile="sequential", snapshot=False)
    assert result.summary["profile"] == "sequential"
    ours, reference = read_store(settings, audio_embedder), read_store(indexed[0], audio_embedder)
    assert set(ours) == set(reference)
    for pid, (payload, vector) in ours.items():
        assert payload == reference[pid][0]
        np.testing.assert_allclose(vector, reference[pid][1], atol=1e-6)


def test_feature_cache_survives_a_new_store(
    library: Library, tiny_bundle: Path, audio_embedder, tmp_path: Path
) -> None:
    """Drop the store but keep the cache (e.g. a new CLaMP3 checkpoint): MERT is not rerun,
    and the facts from the audio (tempo, key, peaks) come back all the same."""
    settings = job_settings(tiny_bundle, tmp_path / "data")
    ingest(settings, audio_embedder, [library.root], snapshot=False)
    before = read_store(settings, audio_embedder)
    shutil.rmtree(settings.data_dir / "qdrant-edge")
    result = ingest(settings, audio_embedder, [library.root], snapshot=False)
    counts = result.summary["counts"]
    assert counts["indexed"] == len(library.files)
    assert counts["features_cached"] == len(library.files)
    assert "mert" not in result.summary["stage_seconds"]
    after = read_store(settings, audio_embedder)
    assert {pid: payload for pid, (payload, _) in after.items()} == {
        pid: payload for pid, (payload, _) in before.items()
    }
    assert all(payload["peaks"] for payload, _ in after.values())


def test_model_change_reindexes_beside_the_live_collection(
    library: Library, tiny_bundle: Path, audio_embedder, tmp_path: Path
) -> None:
    """New models: shards build a new collection while searches keep the old one; publishing
    swaps it in whole."""
    from typer.testing import CliRunner

    from timbre.cli import app
    from timbre.embedding.embedder import load_audio_embedder
    from timbre.embedding.random_bundle import write_random_bundle
    from timbre.store import open_store

    root = _fresh(library, tmp_path)
    settings = job_settings(tiny_bundle, tmp_path / "data")
    ingest(settings, audio_embedder, [root])
    other_bundle = write_random_bundle(tmp_path / "other", "tiny", seed=1)
    other = job_settings(other_bundle, tmp_path / "data")
    # PyTorch: new weights on onnxruntime would cost this test an ONNX export.
    new_embedder = load_audio_embedder(other.models.model_copy(update={"runtime": "torch"}))
    for index in range(2):
        result = ingest(other, new_embedder, [root], shard=(index, 2))
        assert result.summary["published"] is None  # a shard never publishes alone
    old_store = open_store(settings, audio_embedder.info)
    try:
        assert old_store.live().count() == len(library.files)  # still live, still complete
        old_name = old_store.live().name
    finally:
        old_store.close()
    env = {"TIMBRE_DATA_DIR": str(tmp_path / "data"), "TIMBRE_MODELS__BUNDLE": str(other_bundle)}
    published = CliRunner().invoke(app, ["store", "publish"], env=env)
    assert published.exit_code == 0, published.output
    new_store = open_store(other, new_embedder.info)
    try:
        assert new_store.live().name != old_name
        assert new_store.live().count() == len(library.files)
    finally:
        new_store.close()
