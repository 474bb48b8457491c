"""Damaged files in a data dir: each is named, with its way out, and the rest keeps working."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import pytest

from ingest.synthetic import Library, make_library
from tests.support.api_fixtures import api_settings, copy_of, ok, opened, problem
from tests.support.ingest_helpers import ingest, job_settings
from timbre.collections_db import COLLECTIONS_FILE
from timbre.errors import SnapshotError
from timbre.search.holders import SnapshotHolder
from timbre.store import snapshots_dir
from timbre.store.lock import OwnerLock
from timbre.store.snapshot import load_snapshot
from timbre.store.snapshot.export import remove_stale_partials
from timbre.store.snapshot.layout import CURRENT_FILE, EXPORT_LOCK_FILE, PARTIAL_PREFIX


def test_a_damaged_collections_file_leaves_search_up_and_says_how_to_recover(
    library: Library, indexed_dir: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    data = copy_of(indexed_dir, tmp_path)
    damaged = data / COLLECTIONS_FILE
    damaged.write_bytes(bytes(8192))  # zero-filled, as a power cut can leave it
    # An export killed mid-way (kill -9) left its folder: the start removes it.
    partial = snapshots_dir(data) / f"{PARTIAL_PREFIX}000009"
    partial.mkdir()
    (partial / "vectors.npy").write_bytes(b"half")
    with opened(api_settings(tiny_bundle, data, library)) as client:
        assert not partial.exists()
        hits = ok(client.post("/v1/search/text", json={"query": "kick"}))["hits"]
        assert hits
        body = problem(client.get("/v1/collections"), 503, "collections_unavailable")
        assert str(damaged) in body["detail"] and "move it aside" in body["detail"]
        problem(
            client.post("/v1/collections", json={"name": "Kicks"}), 503, "collections_unavailable"
        )
        # The recovery the message gives works without a restart.
        shutil.move(damaged, damaged.with_name("collections.sqlite.damaged"))
        names = [c["name"] for c in ok(client.get("/v1/collections"))["collections"]]
        assert names == ["favourites"]
        ok(client.post("/v1/collections", json={"name": "Kicks"}), 201)


def test_a_stale_partial_is_removed_but_never_one_being_written(tmp_path: Path) -> None:
    snapshots = tmp_path / "snapshots"
    partial = snapshots / f"{PARTIAL_PREFIX}000002"
    partial.mkdir(parents=True)
    (partial / "ids.npy").write_bytes(b"x")
    exporter = OwnerLock(snapshots / EXPORT_LOCK_FILE, what="export", remedy="wait")
    exporter.acquire()  # a live export holds this lock for its whole run
    try:
        assert remove_stale_partials(snapshots) == 0
        assert partial.exists()
    finally:
        exporter.release()
    assert remove_stale_partials(snapshots) == 1  # its exporter is gone (killed): stale
    assert not partial.exists()


def test_current_pointing_outside_the_snapshots_folder_is_refused(
    indexed_dir: Path, audio_embedder: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    snapshots = snapshots_dir(indexed_dir)
    name = (snapshots / CURRENT_FILE).read_text().strip()
    # Another data dir's snapshots, complete and valid in themselves.
    other = tmp_path / "other" / "snapshots"
    shutil.copytree(snapshots / name, other / "000042")
    mine = tmp_path / "mine" / "snapshots"
    shutil.copytree(snapshots / name, mine / name)
    info = audio_embedder.info
    for pointer in ("../../other/snapshots/000042", str(other / "000042"), "000043"):
        if pointer == "000043":  # a link that looks like one of ours
            (mine / "000043").symlink_to(other / "000042")
        (mine / CURRENT_FILE).write_text(pointer)
        with pytest.raises(SnapshotError, match=r"not a snapshot folder of .*refused"):
            load_snapshot(mine, info, mmap_min_bytes=0)
    holder = SnapshotHolder(mine, info, mmap_min_bytes=0, verify_checksums=True)
    caplog.set_level(logging.ERROR)
    assert holder.refresh() is False and holder.current is None
    assert holder.error is not None and "CURRENT" in holder.error
    (mine / CURRENT_FILE).write_text(name)  # pointing home again: served
    assert holder.refresh() is True and holder.current is not None


def test_a_damaged_hash_cache_is_started_afresh_with_a_warning(
    tmp_path: Path, tiny_bundle: Path, audio_embedder: Any, caplog: pytest.LogCaptureFixture
) -> None:
    library = make_library(
        tmp_path / "lib", one_shots_per_pack=1, loops_per_pack=0, loop_bars=(1,), broken=False
    )
    settings = job_settings(tiny_bundle, tmp_path / "data")
    first = ingest(settings, audio_embedder, [library.root])
    hashes = tmp_path / "data" / "cache" / "hashes.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(f"{hashes}{suffix}").unlink(missing_ok=True)
    hashes.write_bytes(bytes(hashes.stat().st_size or 4096))
    caplog.set_level(logging.WARNING)
    again = ingest(settings, audio_embedder, [library.root])
    assert again.exit_code == 0
    assert again.summary["counts"]["already_indexed"] == first.summary["counts"]["indexed"]
    assert any(
        "hash cache" in r.getMessage() and "damaged" in r.getMessage() for r in caplog.records
    )
    # ... and the fresh cache works: a third run hashes nothing.
    third = ingest(settings, audio_embedder, [library.root])
    assert third.exit_code == 0
