"""Watched folders under a running service (the app with its lifespan, the real watcher).

One library, one story: reconcile at start, copy a folder in, rename it, delete files, write
one slowly, unplug the root, and restart with changes made while nothing watched. Every wait
polls the job API with a deadline; nothing sleeps longer than it must.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from fastapi.testclient import TestClient

from tests.support.audio_factory import kick
from timbre.settings import Settings, load_settings

RATE_HZ = 22050
DEADLINE_S = 120.0


def _wav(path: Path, i: int, duration_s: float = 0.3) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, kick(RATE_HZ, duration_s, pitch_hz=40.0 + 9 * i), RATE_HZ)


def _settings(bundle: Path, data: Path, lib: Path) -> Settings:
    return load_settings(
        data_dir=data,
        models={"bundle": bundle, "threads": 2},
        ingest={"progress_interval_s": 0.2, "workers": 0, "profile": "sequential"},
        watch={
            "enabled": True,
            "roots": [lib],
            "debounce_s": 0.3,
            "settle_s": 0.3,
            "tick_s": 0.1,
            "max_batch_files": 64,
        },
    )


class Service:
    """The test's view of the running service: its watcher state and its jobs."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.seen: set[str] = set()

    def watch(self) -> dict[str, Any]:
        state = self.client.get("/v1/stats").json()["watch"]
        assert state is not None
        return state

    def wait(self, until: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            state = self.watch()
            if until(state):
                return state
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}: {self.watch()}")

    def jobs_done(self) -> list[dict[str, Any]]:
        """Wait until the watcher is idle, then every job it started since the last call."""
        jobs = self.client.app.state.jobs  # type: ignore[attr-defined]
        self.wait(
            lambda s: (
                s["pending"] == 0
                and s["running_job"] is None
                and not s["reconcile_pending"]
                and not jobs.running
            ),  # a batch just taken shows in the job runner first
            "the watcher to go idle",
        )
        new = [j for j in self.client.app.state.jobs.jobs if j not in self.seen]  # type: ignore[attr-defined]
        self.seen.update(new)
        out = []
        for job_id in new:
            status = self.client.get(f"/v1/ingest/{job_id}").json()
            assert status["state"] == "finished", status
            out.append(status["summary"])
        return out

    def until_jobs(self, count: int = 1) -> list[dict[str, Any]]:
        """The jobs that handled one change (at least ``count``), once the watcher is idle."""
        jobs: list[dict[str, Any]] = []
        deadline = time.monotonic() + DEADLINE_S
        while len(jobs) < count:
            assert time.monotonic() < deadline, "no job handled the change"
            time.sleep(0.1)
            jobs += self.jobs_done()
        return jobs

    def points(self) -> dict[str, list[str]]:
        store = self.client.app.state.service.library.store.get()  # type: ignore[attr-defined]
        return {r.id: sorted(r.payload["paths"]) for r in store.live().scroll(fields=["paths"])}

    def packs(self, folder: str) -> set[str | None]:
        """The ``pack`` of every point with a path in ``folder``."""
        store = self.client.app.state.service.library.store.get()  # type: ignore[attr-defined]
        return {
            r.payload["pack"]
            for r in store.live().scroll(fields=["pack", "paths"])
            if any(f"/{folder}/" in p for p in r.payload["paths"])
        }

    def folders(self) -> dict[str, int]:
        """The top folder listing: name -> samples."""
        listing = self.client.get("/v1/folders").json()
        return {f["name"]: f["count"] for f in listing["folders"]}

    def searched_paths(self) -> set[str]:
        hits = self.client.post("/v1/search/text", json={"query": "kick", "top_k": 50}).json()
        return {p for hit in hits["hits"] for p in hit["paths"]}

    def snapshot_count(self) -> int:
        return int(self.client.get("/v1/stats").json()["snapshot"]["count"])


def _total(jobs: list[dict[str, Any]], key: str) -> int:
    return sum(int(j["counts"][key]) for j in jobs)


def test_the_service_keeps_the_index_current(tmp_path: Path, tiny_bundle: Path) -> None:
    from timbre.cli.wiring import build_app

    lib = (tmp_path / "Samples").resolve()
    for i in range(3):
        _wav(lib / "Kicks" / f"Kick_{i}.wav", i)
    settings = _settings(tiny_bundle, tmp_path / "data", lib)

    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        svc = Service(client)
        # Reconciliation at start: the library is indexed with nothing run by hand.
        start = svc.until_jobs()
        assert _total(start, "indexed") == 3
        assert svc.watch()["roots"] == [{"path": str(lib), "available": True, "problem": None}]

        # A folder copied in: searchable once it settles, in the snapshot too.
        outside = tmp_path / "drop" / "Toms"
        for i in range(4):
            _wav(outside / f"Tom_{i}.wav", 10 + i)
        shutil.copytree(outside, lib / "Toms")
        jobs = svc.until_jobs()
        assert _total(jobs, "indexed") == 4
        assert {str(lib / "Toms" / f"Tom_{i}.wav") for i in range(4)} <= svc.searched_paths()
        assert svc.snapshot_count() == 7
        state = svc.watch()
        assert state["last_event_at"] and state["last_job"]["state"] == "finished"
        assert state["last_job"]["summary"]["embedded"] in (0, 4)  # a folder's files come twice

        # A renamed folder: paths change, nothing is embedded again.
        before = svc.points()
        (lib / "Toms").rename(lib / "Toms Renamed")
        jobs = svc.until_jobs()
        assert _total(jobs, "indexed") == 0 and _total(jobs, "deleted_points") == 0
        assert _total(jobs, "pruned_paths") == 4
        after = svc.points()
        assert set(after) == set(before)
        renamed = {p for paths in after.values() for p in paths if "Toms Renamed" in p}
        assert len(renamed) == 4 and not any("/Toms/" in p for v in after.values() for p in v)
        assert svc.watch()["last_job"]["summary"]["embedded"] == 0
        # What the names say follows them, and the old folder is no longer listed.
        assert svc.packs("Toms Renamed") == {"Toms Renamed"}
        assert svc.folders() == {"Kicks": 3, "Toms Renamed": 4}

        # Deleted files: gone from the store, the search and the snapshot.
        for i in (0, 1):
            (lib / "Toms Renamed" / f"Tom_{i}.wav").unlink()
        jobs = svc.until_jobs()
        assert _total(jobs, "deleted_points") == 2
        assert len(svc.points()) == 5 and svc.snapshot_count() == 5
        assert not any("Tom_0" in p or "Tom_1" in p for p in svc.searched_paths())

        # The only file of a folder moved out: the empty folder is no unplugged drive.
        (lib / "Solo").mkdir()
        (lib / "Toms Renamed" / "Tom_2.wav").rename(lib / "Solo" / "Tom_2.wav")
        svc.until_jobs()
        assert svc.packs("Solo") == {"Solo"}
        (lib / "Solo" / "Tom_2.wav").rename(lib / "Toms Renamed" / "Tom_2.wav")
        jobs = svc.until_jobs()
        assert _total(jobs, "pruned_paths") == 1 and _total(jobs, "kept_unreadable_paths") == 0
        assert not any("/Solo/" in p for v in svc.points().values() for p in v)
        assert svc.folders() == {"Kicks": 3, "Toms Renamed": 2}

        # A file written slowly in chunks: indexed once, complete.
        whole = kick(RATE_HZ, 1.0, pitch_hz=77.0)
        slow = lib / "Kicks" / "Slow.wav"
        full_bytes = tmp_path / "slow.wav"
        sf.write(full_bytes, whole, RATE_HZ)
        data = full_bytes.read_bytes()
        with slow.open("wb") as out:
            for start_byte in range(0, len(data), len(data) // 8 + 1):
                out.write(data[start_byte : start_byte + len(data) // 8 + 1])
                out.flush()
                time.sleep(0.15)  # faster than the debounce: one copy in progress
        jobs = svc.until_jobs()
        assert _total(jobs, "indexed") == 1 and _total(jobs, "failed") == 0
        store = client.app.state.service.library.store.get()  # type: ignore[attr-defined]
        slow_points = [
            r.payload
            for r in store.live().scroll(fields=["paths", "duration_s"])
            if str(slow) in r.payload["paths"]
        ]
        assert len(slow_points) == 1
        assert np.isclose(slow_points[0]["duration_s"], 1.0, atol=0.01)
        count = len(svc.points())
        assert count == 6

        # The root unplugged (an empty mount point in its place): reported, nothing deleted.
        away = tmp_path / "Samples.away"
        lib.rename(away)
        lib.mkdir()
        state = svc.wait(lambda s: not s["roots"][0]["available"], "the root to be reported")
        assert "unplugged" in state["roots"][0]["problem"]
        svc.jobs_done()
        assert len(svc.points()) == count and svc.snapshot_count() == count
        # Plugged back in: reconciled, still everything.
        lib.rmdir()
        away.rename(lib)
        svc.wait(lambda s: s["roots"][0]["available"], "the root to come back")
        jobs = svc.until_jobs()
        assert _total(jobs, "indexed") == 0 and _total(jobs, "deleted_points") == 0
        assert len(svc.points()) == count
        # Nothing changed: no new snapshot (the published one already holds everything).
        assert all(j["snapshot"].get("unchanged") for j in jobs), [j["snapshot"] for j in jobs]

    # Changes made while nothing watched are reconciled at the next start.
    (lib / "Kicks" / "Kick_0.wav").unlink()
    _wav(lib / "Kicks" / "Kick_New.wav", 30)
    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        svc = Service(client)
        jobs = svc.until_jobs()
        assert _total(jobs, "indexed") == 1 and _total(jobs, "deleted_points") == 1
        paths = {p for v in svc.points().values() for p in v}
        assert str(lib / "Kicks" / "Kick_New.wav") in paths
        assert str(lib / "Kicks" / "Kick_0.wav") not in paths
        assert svc.snapshot_count() == count
    import threading

    assert not any(t.name == "timbre-watch" for t in threading.enumerate())
