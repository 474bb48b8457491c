"""A full disk fails a write with "disk full" (exit 2, HTTP 507) and never kills the process.

Qdrant Edge writes through memory maps: on a full file system the kernel's answer is SIGBUS,
which no Python code can catch. So these tests run writes against a disk that is (or reports
being) too full, in this very process: a missing check kills pytest itself.

Unit level: ``os.statvfs`` reporting little free space, and ``OSError(ENOSPC)`` raised from
real write paths. Then a real small file system (tmpfs, root only; skipped elsewhere).
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.store_factory import make_dataset, model_info, open_test_store
from timbre import diskspace
from timbre.collections_db import Collections
from timbre.diskspace import DiskReserve, as_disk_full, sparse_debt
from timbre.errors import DiskFullError


def _report_free(monkeypatch: pytest.MonkeyPatch, free: int) -> None:
    """Make every free-space check see ``free`` bytes (the file system itself is untouched)."""
    real = os.statvfs

    class Shrunk:
        def __init__(self, path: Any) -> None:
            stat = real(path)
            self.f_frsize = stat.f_frsize
            self.f_bavail = free // stat.f_frsize

    monkeypatch.setattr(diskspace.os, "statvfs", Shrunk)


def test_a_store_write_is_refused_before_it_reaches_the_shard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_dataset(40, seed=3)
    store = open_test_store("edge", tmp_path / "data")
    try:
        store.live().upsert(data.points[:20])
        shard = next((tmp_path / "data").rglob("shard"))
        debt = sparse_debt(shard)
        assert debt > 0  # the engine's files are sparse: this is what writes may still claim
        # More free than the reserve alone, less than the reserve plus what the shard may claim.
        _report_free(monkeypatch, 256 * 2**20 + debt // 2)
        with pytest.raises(DiskFullError, match="disk full: writing to the collection"):
            store.live().upsert(data.points[20:])
        with pytest.raises(DiskFullError):
            store.live().set_paths(data.points[0].id, ["/elsewhere/a.wav"])
        monkeypatch.undo()
        assert store.live().count() == 20  # nothing of the refused batch landed
        assert store.live().retrieve([data.points[0].id])[0].payload["path"] != "/elsewhere/a.wav"
        store.live().upsert(data.points[20:])  # space back: the same write goes through
        assert store.live().count() == 40
    finally:
        store.close()


def test_creating_a_collection_needs_the_reserve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _report_free(monkeypatch, 8 * 2**20)
    with pytest.raises(DiskFullError, match=r"creating the collection .* 8.0 MiB free"):
        open_test_store("edge", tmp_path / "data", model_info())
    assert not list((tmp_path / "data").rglob("segments"))  # no shard was started


def test_enospc_from_a_real_write_is_named_disk_full(tmp_path: Path) -> None:
    # /dev/full answers every write with ENOSPC: a real write path, a real errno.
    with pytest.raises(OSError) as caught, Path("/dev/full").open("wb") as out:
        np.save(out, np.zeros(4096, np.float32))
    full = as_disk_full(caught.value, "writing a cache file")
    assert full is not None and "disk full: writing a cache file" in str(full)
    assert as_disk_full(OSError(errno.EACCES, "denied"), "x") is None
    wrapped = RuntimeError("export failed")
    wrapped.__cause__ = caught.value
    assert as_disk_full(wrapped, "x") is not None  # found through the chain of causes
    db_full = sqlite3.OperationalError("database or disk is full")
    assert as_disk_full(db_full, "x") is not None


def test_ingest_fails_with_disk_full_when_a_cache_write_hits_enospc(
    tmp_path: Path, tiny_bundle: Path, audio_embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest import cache
    from ingest.synthetic import make_library
    from tests.support.ingest_helpers import ingest, job_settings

    library = make_library(
        tmp_path / "lib", one_shots_per_pack=1, loops_per_pack=0, loop_bars=(1,), broken=False
    )
    real_save = np.save

    def save_to_a_full_disk(file: Any, arr: Any, **kw: Any) -> None:
        real_save(file, arr, **kw)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(cache.np, "save", save_to_a_full_disk)
    with pytest.raises(DiskFullError, match="disk full: the ingest job failed"):
        ingest(job_settings(tiny_bundle, tmp_path / "data"), audio_embedder, [library.root])


def test_a_full_collections_file_is_a_disk_full_error(tmp_path: Path) -> None:
    collections = Collections(tmp_path / "collections.sqlite")
    try:
        collections.create("Kicks")
        # SQLite's own answer to a full disk (SQLITE_FULL), forced by a page limit: the file
        # may not grow by another page, exactly as when the disk has none left.
        db = collections._db
        assert db is not None
        (pages,) = db.execute("PRAGMA page_count").fetchone()
        db.execute(f"PRAGMA max_page_count = {pages}")
        ids = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(400)]
        with pytest.raises(DiskFullError, match=r"disk full: the collections file .*sqlite"):
            collections.add("Kicks", ids, path_hints=["/x" * 200] * len(ids))
        assert collections.get("Kicks").count == 0  # rolled back whole
    finally:
        collections.close()


# -- a real full file system ----------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A tmpfs of 700 MiB (or the size given as the fixture's parameter; memory is only used
    as files fill it), unmounted whatever happens."""
    size = getattr(request, "param", "700m")
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    import subprocess

    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` until ``leave`` bytes are free."""
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    with (disk / "filler").open("ab") as out:
        os.posix_fallocate(out.fileno(), out.tell(), max(0, free - leave))


def test_a_full_tmpfs_fails_jobs_and_writes_cleanly_and_nothing_dies(
    small_disk: Path, tmp_path: Path, tiny_bundle: Path, audio_embedder: Any
) -> None:
    import subprocess
    import sys

    from ingest.synthetic import make_library
    from tests.conftest import keep_export_dir
    from tests.support.api_fixtures import opened, problem
    from tests.support.ingest_helpers import ingest, job_settings, read_store

    first = make_library(
        tmp_path / "first", one_shots_per_pack=1, loops_per_pack=0, loop_bars=(1,), broken=False
    )
    second = make_library(
        tmp_path / "second",
        one_shots_per_pack=1,
        loops_per_pack=0,
        loop_bars=(1,),
        broken=False,
        seed=7,
    )
    data = small_disk / "data"
    settings = job_settings(tiny_bundle, data)
    ingest(settings, audio_embedder, [first.root])
    before = read_store(settings, audio_embedder)  # on tmpfs, this open fills the sparse files
    assert before
    _fill(small_disk, leave=160 * 2**20)  # below the 256 MiB reserve

    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMBRE_")}
    env.update(TIMBRE_DATA_DIR=str(data), TIMBRE_MODELS__BUNDLE=str(tiny_bundle))
    run = subprocess.run(
        [sys.executable, "-m", "timbre.cli", "ingest", str(second.root)],
        env=keep_export_dir(env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 2, run.stderr[-2000:]  # not 135 (SIGBUS), not 3 (a "bug")
    assert "disk full" in run.stderr and "disk.min_free_bytes" in run.stderr
    assert _same(read_store(settings, audio_embedder), before)  # nothing lost, still readable

    from tests.support.api_fixtures import api_settings

    service_settings = api_settings(tiny_bundle, data, first)
    with opened(service_settings) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text  # reads still work: still ready
        body = ready.json()
        assert body["disk"]["low"] is True and "disk space low" in body["warnings"][0]
        hits = client.post("/v1/search/text", json={"query": "kick"})
        assert hits.status_code == 200 and hits.json()["hits"]
        refused = client.post("/v1/ingest", json={"paths": [str(first.root)]})
        assert "disk.min_free_bytes" in problem(refused, 507, "disk_full")["detail"]
        # Not a byte left: a collection write fails on SQLite's own ENOSPC, named as such.
        _fill(small_disk, leave=0)
        full = client.post("/v1/collections", json={"name": "Kicks " + "x" * 40})
        assert "collections file" in problem(full, 507, "disk_full")["detail"]
        assert client.get("/healthz").status_code == 200
        assert client.post("/v1/search/text", json={"query": "snare"}).status_code == 200
    (small_disk / "filler").unlink()
    assert _same(read_store(settings, audio_embedder), before)


@pytest.mark.parametrize("small_disk", ["16m"], indirect=True)
def test_opening_a_store_on_a_tmpfs_too_small_for_it_is_refused_not_killed(
    small_disk: Path, indexed_dir: Path, audio_embedder: Any
) -> None:
    import subprocess

    from timbre.settings import load_settings
    from timbre.store import open_store

    # The store's files are sparse (~1.5 MB used of ~290 MB): they fit, as long as nobody
    # reads them through a map. On tmpfs, opening does, and used to end in SIGBUS (rc 135).
    data = small_disk / "data"
    data.mkdir()
    subprocess.run(
        ["cp", "-a", "--sparse=always", str(indexed_dir / "qdrant-edge"), str(data)], check=True
    )
    settings = load_settings(data_dir=data)
    with pytest.raises(DiskFullError, match=r"opening the collection .*tmpfs"):
        open_store(settings, audio_embedder.info)


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(
        a[k][0] == b[k][0] and np.array_equal(a[k][1], b[k][1]) for k in a
    )


def test_any_write_a_request_makes_on_a_full_disk_is_a_507_with_its_cause(
    tmp_path: Path,
) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from app import problems

    app = FastAPI()
    problems.install(app)

    @app.get("/render")
    def render() -> dict[str, str]:
        # What a rendition written into a full cache folder raises: a real ENOSPC.
        with Path("/dev/full").open("wb") as out:
            out.write(b"RIFF" * 4096)
        return {}

    with TestClient(app, raise_server_exceptions=False) as client:
        reply = client.get("/render")
    assert reply.status_code == 507
    body = reply.json()
    assert body["code"] == "disk_full" and "No space left on device" in body["detail"]


def test_the_watcher_waits_while_the_disk_is_full_and_says_so_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from app.jobs import IngestJobs
    from timbre.cli.watching import JobsSink

    ran: list[Any] = []
    reserve = DiskReserve(tmp_path, 256 * 2**20)
    jobs = IngestJobs(
        lambda request, progress: ran.append(request) or ({}, 0),
        precheck=lambda: reserve.check(0, "an ingest job"),
    )
    sink = JobsSink(jobs)
    _report_free(monkeypatch, 2**20)
    caplog.set_level("INFO", logger="timbre.watch")
    for _ in range(5):  # five ticks of the watcher
        assert sink.submit([str(tmp_path)], None) is None
    warned = [r.getMessage() for r in caplog.records if "disk full" in r.getMessage()]
    assert len(warned) == 1 and not ran
    monkeypatch.undo()
    assert sink.submit([str(tmp_path)], None) is not None  # space is back: the batch runs
