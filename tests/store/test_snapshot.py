"""FAISS snapshots: manifest, atomic publication (even when killed), verified loading, freshness."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.store_factory import (
    Dataset,
    make_dataset,
    model_info,
    open_test_store,
    spawn_child,
    unit_vectors,
    wait_for_line,
)
from timbre.errors import (
    DiskFullError,
    ModelMismatchError,
    SnapshotError,
    SnapshotNotFoundError,
    StoreLockedError,
)
from timbre.store import VectorStore
from timbre.store.lock import OwnerLock
from timbre.store.schema import load_schema
from timbre.store.snapshot import (
    CURRENT_FILE,
    DATA_FILES,
    EXPORT_LOCK_FILE,
    PAYLOADS_FILE,
    SnapshotManifest,
    current_snapshot_name,
    export_snapshot,
    freshness,
    load_snapshot,
)
from timbre.store.snapshot.columns import column_fields, column_files


@pytest.fixture
def data() -> Dataset:
    return make_dataset(500, seed=21)


@pytest.fixture
def store(tmp_path: Path, data: Dataset) -> Iterator[VectorStore]:
    opened = open_test_store("edge", tmp_path)
    opened.live().upsert(data.points)
    yield opened
    opened.close()


def _export(store: VectorStore, snapshots: Path, **kwargs: object) -> SnapshotManifest:
    return export_snapshot(store.live(), snapshots, source_mode=store.mode, keep=3, **kwargs)  # type: ignore[arg-type]


def _load(snapshots: Path, **kwargs: object) -> object:
    return load_snapshot(snapshots, model_info(), mmap_min_bytes=0, **kwargs)  # type: ignore[arg-type]


def test_manifest_records_models_source_and_checksums(store: VectorStore, tmp_path: Path) -> None:
    snapshots = tmp_path / "snapshots"
    marker = store.live().last_write()
    manifest = _export(store, snapshots)
    assert manifest.name == "000001" == current_snapshot_name(snapshots)
    assert manifest.model == model_info().as_dict()
    assert manifest.audio_key == model_info().audio_key()
    assert manifest.pipeline_version == model_info().pipeline_version
    assert (manifest.dim, manifest.metric, manifest.count) == (48, "inner_product", 500)
    assert manifest.source_collection == store.live().describe().name
    assert manifest.source_mode == "embedded"
    assert manifest.source_write == marker
    assert set(DATA_FILES) <= set(manifest.files)
    # a filter column for every indexed keyword/float field, derived ones (dirs) included
    assert manifest.columns == column_fields(load_schema().indexes)
    assert {
        "dirs": "keyword",
        "bpm": "float",
        "tags": "keyword",
    }.items() <= manifest.columns.items()
    assert set(manifest.files) == set(DATA_FILES) | {
        f for field, kind in manifest.columns.items() for f in column_files(field, kind)
    }
    on_disk = SnapshotManifest.from_json((snapshots / "000001" / "manifest.json").read_text())
    assert on_disk == manifest


def test_lookups_by_id(store: VectorStore, data: Dataset, tmp_path: Path) -> None:
    _export(store, tmp_path / "snapshots")
    snapshot = load_snapshot(tmp_path / "snapshots", model_info(), mmap_min_bytes=0)
    assert len(snapshot) == 500
    assert sorted(snapshot.ids()) == sorted(data.ids)
    for row in (0, 123, 499):
        np.testing.assert_allclose(snapshot.vector(data.ids[row]), data.vectors[row], atol=1e-6)
        payload = snapshot.payload(data.ids[row])
        assert (
            payload is not None
            and payload["content_sha256"] == data.payloads[row]["content_sha256"]
        )
    unknown = "00000000-0000-5000-8000-000000000000"
    assert snapshot.vector(unknown) is None and snapshot.payload(unknown) is None


def test_exports_are_numbered_and_old_ones_pruned(store: VectorStore, tmp_path: Path) -> None:
    snapshots = tmp_path / "snapshots"
    names = [
        export_snapshot(store.live(), snapshots, source_mode="embedded", keep=2).name
        for _ in range(4)
    ]
    assert names == ["000001", "000002", "000003", "000004"]
    assert sorted(p.name for p in snapshots.iterdir() if p.is_dir()) == ["000003", "000004"]
    assert current_snapshot_name(snapshots) == "000004"


def test_an_empty_collection_exports_an_empty_snapshot(tmp_path: Path) -> None:
    store = open_test_store("edge", tmp_path)
    try:
        _export(store, tmp_path / "snapshots")
        snapshot = load_snapshot(tmp_path / "snapshots", model_info(), mmap_min_bytes=0)
        assert len(snapshot) == 0
        assert snapshot.search(unit_vectors(np.random.default_rng(0), 1)[0], top_k=5) == []
    finally:
        store.close()


def test_nothing_published_yet(tmp_path: Path) -> None:
    with pytest.raises(SnapshotNotFoundError):
        load_snapshot(tmp_path / "snapshots", model_info(), mmap_min_bytes=0)


def test_a_corrupt_file_is_refused(store: VectorStore, tmp_path: Path) -> None:
    snapshots = tmp_path / "snapshots"
    _export(store, snapshots)
    payloads = snapshots / "000001" / PAYLOADS_FILE
    raw = bytearray(payloads.read_bytes())
    raw[10] ^= 0x01  # one flipped bit, same size
    payloads.write_bytes(bytes(raw))
    with pytest.raises(SnapshotError, match=r"payloads.jsonl fails its sha256"):
        load_snapshot(snapshots, model_info(), mmap_min_bytes=0)


def test_a_corrupt_column_is_refused(store: VectorStore, tmp_path: Path) -> None:
    snapshots = tmp_path / "snapshots"
    _export(store, snapshots)
    rows = snapshots / "000001" / "columns" / "genre.post_rows.npy"
    raw = bytearray(rows.read_bytes())
    raw[-1] ^= 0x01
    rows.write_bytes(bytes(raw))
    with pytest.raises(SnapshotError, match=r"genre.post_rows.npy fails its sha256"):
        load_snapshot(snapshots, model_info(), mmap_min_bytes=0)


def test_a_snapshot_of_the_previous_format_is_refused(store: VectorStore, tmp_path: Path) -> None:
    snapshots = tmp_path / "snapshots"
    _export(store, snapshots)
    path = snapshots / "000001" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["format_version"] = 1
    path.write_text(json.dumps(manifest))
    with pytest.raises(SnapshotError, match=r"format 1 .* export a new snapshot"):
        load_snapshot(snapshots, model_info(), mmap_min_bytes=0)


def test_a_manifest_naming_files_outside_the_snapshot_is_refused(
    store: VectorStore, tmp_path: Path
) -> None:
    snapshots = tmp_path / "snapshots"
    _export(store, snapshots)
    path = snapshots / "000001" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"]["../../etc/passwd"] = {"sha256": "0" * 64, "bytes": 1}
    path.write_text(json.dumps(manifest))
    with pytest.raises(SnapshotError, match="unexpected files"):
        load_snapshot(snapshots, model_info(), mmap_min_bytes=0)


def test_a_truncated_file_is_refused_even_without_checksums(
    store: VectorStore, tmp_path: Path
) -> None:
    snapshots = tmp_path / "snapshots"
    _export(store, snapshots)
    index = snapshots / "000001" / "vectors.npy"
    with index.open("r+b") as f:
        f.truncate(index.stat().st_size - 4)
    with pytest.raises(SnapshotError, match="truncated"):
        load_snapshot(snapshots, model_info(), mmap_min_bytes=0, verify_checksums=False)


def test_a_snapshot_without_manifest_is_refused(store: VectorStore, tmp_path: Path) -> None:
    snapshots = tmp_path / "snapshots"
    _export(store, snapshots)
    (snapshots / "000001" / "manifest.json").unlink()
    with pytest.raises(SnapshotError, match="no manifest"):
        load_snapshot(snapshots, model_info(), mmap_min_bytes=0)


@pytest.mark.parametrize("other", [model_info(revision="r2"), model_info(dim=64)])
def test_a_snapshot_of_other_models_is_refused(
    store: VectorStore, tmp_path: Path, other: object
) -> None:
    _export(store, tmp_path / "snapshots")
    with pytest.raises(ModelMismatchError, match="built by"):
        load_snapshot(tmp_path / "snapshots", other, mmap_min_bytes=0)  # type: ignore[arg-type]


def test_a_failed_export_leaves_the_previous_snapshot_published(
    store: VectorStore, tmp_path: Path
) -> None:
    snapshots = tmp_path / "snapshots"
    first = _export(store, snapshots)

    def fail(rows: int) -> None:
        raise OSError(28, "No space left on device")

    # A full disk is named as such (exit 2, HTTP 507), the previous snapshot kept all the same.
    with pytest.raises(DiskFullError, match=r"disk full: .*previous one stays published") as err:
        _export(store, snapshots, batch_size=100, progress=fail)
    assert isinstance(err.value.__cause__, OSError)
    assert current_snapshot_name(snapshots) == first.name
    assert sorted(p.name for p in snapshots.iterdir() if p.is_dir()) == [
        "000001"
    ]  # no partial left
    assert load_snapshot(snapshots, model_info(), mmap_min_bytes=0).manifest == first


def test_an_export_killed_midway_leaves_the_previous_snapshot_intact(
    tmp_path: Path, data: Dataset
) -> None:
    snapshots = tmp_path / "snapshots"
    store = open_test_store("edge", tmp_path)
    store.live().upsert(data.points)
    first = _export(store, snapshots)
    store.live().upsert(make_dataset(100, seed=99).points)
    store.close()

    child = spawn_child("export-and-hang", tmp_path)
    try:
        wait_for_line(child, "exporting 100")  # first page written, mid-export
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL

    # The previous snapshot is untouched, still published, and loads with its checksums.
    assert (snapshots / CURRENT_FILE).read_text().strip() == first.name
    partials = [p.name for p in snapshots.iterdir() if p.name.startswith(".partial-")]
    assert partials == [".partial-000002"]
    snapshot = load_snapshot(snapshots, model_info(), mmap_min_bytes=0, verify_checksums=True)
    assert snapshot.manifest == first and len(snapshot) == 500

    # The store is intact too, and the next export cleans up and publishes.
    store = open_test_store("edge", tmp_path)
    try:
        assert store.live().count() == 600
        second = _export(store, snapshots)
    finally:
        store.close()
    assert second.name == "000002" and second.count == 600
    assert not any(p.name.startswith(".partial-") for p in snapshots.iterdir())


def test_one_export_at_a_time(store: VectorStore, tmp_path: Path) -> None:
    snapshots = tmp_path / "snapshots"
    other = OwnerLock(snapshots / EXPORT_LOCK_FILE, what="export", remedy="")
    other.acquire()
    try:
        with pytest.raises(StoreLockedError, match="Wait for that export"):
            _export(store, snapshots)
    finally:
        other.release()


def test_a_loaded_snapshot_keeps_serving_after_it_is_pruned(
    store: VectorStore, data: Dataset, tmp_path: Path
) -> None:
    snapshots = tmp_path / "snapshots"
    export_snapshot(store.live(), snapshots, source_mode="embedded", keep=1)
    serving = load_snapshot(snapshots, model_info(), mmap_min_bytes=0)
    assert serving.mmapped
    for _ in range(2):
        export_snapshot(store.live(), snapshots, source_mode="embedded", keep=1)
    assert not serving.directory.exists()  # pruned from disk ...
    assert serving.search(data.vectors[3], top_k=1)[0].id == data.ids[3]  # ... still mapped


def test_freshness_tracks_writes_and_swaps(
    store: VectorStore, data: Dataset, tmp_path: Path
) -> None:
    manifest = _export(store, tmp_path / "snapshots")
    fresh = freshness(manifest, store.live())
    assert fresh.is_current and fresh.count_lag == 0 and fresh.writes_behind == 0

    store.live().upsert(make_dataset(30, seed=8).points)
    store.live().delete(data.ids[:5])
    behind = freshness(manifest, store.live())
    assert not behind.is_current
    assert behind.count_lag == 25
    assert behind.writes_behind == 2
    assert behind.live_last_write_at is not None and behind.live_last_write_at > manifest.created_at

    generation = store.begin_generation()
    generation.upsert(data.points[:10])
    generation.publish()
    swapped = freshness(manifest, store.live())
    assert not swapped.same_collection and swapped.writes_behind is None and not swapped.is_current
    assert json.dumps(swapped.as_dict())  # reportable as JSON by the API


def test_a_snapshot_of_another_family_is_refused_naming_both(
    store: VectorStore, tmp_path: Path
) -> None:
    import dataclasses

    _export(store, tmp_path / "snapshots")
    clap = dataclasses.replace(
        model_info(), family="clap", clap="laion/larger_clap_general@main", mert="", clamp3=""
    )
    with pytest.raises(
        ModelMismatchError, match=r"clamp3 model family, but models\.family is clap"
    ):
        load_snapshot(tmp_path / "snapshots", clap, mmap_min_bytes=0)
