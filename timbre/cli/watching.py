"""Wires the watcher (:mod:`ingest.watch`) to the API's job runner, for ``timbre serve`` and
``timbre watch``: batches run as ordinary ingest jobs, one at a time, visible in the job list."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.jobs import IngestJobs
from app.metrics import Metrics
from app.schemas import IngestIn
from ingest.watch import Watcher, WatchOptions
from ingest.watch_batch import Batch
from timbre.errors import (
    ConflictError,
    DiskFullError,
    ModelMismatchError,
    SchemaMismatchError,
    TimbreError,
    UnavailableError,
)
from timbre.library_roots import recorded_roots
from timbre.search import Library
from timbre.settings import Settings

log = logging.getLogger("timbre.watch")

# fmt: off
_SHOWN_COUNTS = (
    "discovered", "indexed", "already_indexed", "paths_added", "pruned_paths", "deleted_points",
    "rederived", "kept_unreadable_paths", "failed", "unreadable",
)
# fmt: on

_CHANGE_COUNTS = ("embedded", "paths_added", "pruned_paths", "deleted_points", "rederived")


def watch_roots(settings: Settings) -> tuple[Path, ...]:
    """``watch.roots``, or (null) the roots the service knows: ``api.library_roots`` and the
    roots this data dir indexes."""
    if settings.watch.roots is not None:
        return tuple(dict.fromkeys(settings.watch.roots))
    return tuple(dict.fromkeys([*settings.api.library_roots, *recorded_roots(settings.data_dir)]))


def brief(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    """The part of a job summary the watcher's status shows (``embedded`` = newly embedded)."""
    if summary is None:
        return None
    counts = summary.get("counts") or {}
    out: dict[str, Any] = {k: counts.get(k, 0) for k in _SHOWN_COUNTS}
    out["embedded"] = out.pop("indexed")
    # Whether the job changed the index: a change often comes as two batches (a file's create
    # and its last write), the second finding nothing new, and the status shows the last change.
    out["changed"] = any(out[k] for k in _CHANGE_COUNTS)
    out["snapshot"] = summary.get("snapshot")
    out["wall_s"] = summary.get("wall_s")
    return out


class JobsSink:
    """The watcher's jobs, through the runner the API uses (so they show in its job list)."""

    def __init__(self, jobs: IngestJobs) -> None:
        self.jobs = jobs
        self._refused: str | None = None  # why the last job was refused (a full disk)

    def submit(self, roots: Sequence[str], batch: Batch | None) -> str | None:
        request = IngestIn(
            paths=list(roots),
            prune=batch is None,  # a reconciliation forgets what went while nobody watched
            changed=None if batch is None else list(batch.changed),
            gone=[] if batch is None else list(batch.gone),
        )
        try:
            job_id = self.jobs.start(request).job_id
        except ConflictError:
            return None  # a job started through the API runs: the watcher tries again
        except DiskFullError as exc:
            # The batch waits (the watcher tries again each tick) until space is freed;
            # said once, not on every tick.
            if self._refused is None:
                log.warning("watch: changes wait: %s", exc)
            self._refused = str(exc)
            return None
        if self._refused is not None:
            log.info("watch: disk space is back; indexing resumes")
            self._refused = None
        return job_id

    def outcome(self, job_id: str) -> dict[str, Any] | None:
        job = self.jobs.get(job_id)
        if job.state == "running":
            return None
        return {
            "state": job.state,
            "exit_code": job.exit_code,
            "error": job.error,
            "finished_at": job.finished_at,
            "summary": brief(job.summary),
            "failures": len(job.failures),
        }


def build_watcher(settings: Settings, jobs: IngestJobs, metrics: Metrics | None = None) -> Watcher:
    """A watcher of :func:`watch_roots` whose batches run as ``jobs``."""
    w = settings.watch
    options = WatchOptions(
        roots=watch_roots(settings),
        debounce_s=w.debounce_s,
        settle_s=w.settle_s,
        max_batch_files=w.max_batch_files,
        tick_s=w.tick_s,
        reconcile_on_start=w.reconcile_on_start,
    )
    if metrics is None:
        return Watcher(options, JobsSink(jobs))

    def on_batch(changed: int, gone: int, lag_s: float) -> None:
        metrics.watch_batches.inc()
        metrics.watch_lag.observe(lag_s)

    return Watcher(
        options,
        JobsSink(jobs),
        on_event=lambda kind: metrics.watch_events.labels(kind).inc(),
        on_batch=on_batch,
    )


def watch_refusal(settings: Settings, library: Library) -> TimbreError | None:
    """Why no watcher may run on this data dir: its live collection holds vectors the
    configured models cannot add to (another family, other models, another schema), so every
    batch would fail. None when it may (an unreachable store is retried by each job)."""
    try:
        library.store.get()
    except ModelMismatchError as exc:
        problem: TimbreError = exc
    except UnavailableError as exc:
        if not isinstance(exc.__cause__, SchemaMismatchError):
            return None
        problem = exc.__cause__
    except TimbreError:
        return None
    else:
        return None
    live = _live_collection(settings, library)
    ours = library.info.family
    if live is None or live[1] == ours:
        return problem
    name, theirs = live
    # Named by family, whichever check the store tripped first (the vector sizes of two
    # families differ, and that message names none).
    return ModelMismatchError(
        f"the live collection {name!r} holds vectors of the {theirs} model family, but "
        f"models.family is {ours}. Run `timbre ingest` on the library to re-index with {ours} "
        f"(it builds a new collection beside the live one and publishes it when complete), or "
        f"set models.family to {theirs}"
    )


def _live_collection(settings: Settings, library: Library) -> tuple[str, str] | None:
    """The live collection's name and model family, read as ingest reads it (None: unknown)."""
    from timbre.embedding.info import family_of_key
    from timbre.store import open_store

    try:
        store = open_store(settings, library.info, reindex=True)
    except Exception:  # only the message is at stake: the store's own one is said instead
        log.debug("cannot read the live collection's family", exc_info=True)
        return None
    try:
        info = store.live().describe()
        return info.name, family_of_key(info.audio_key)
    except Exception:
        log.debug("cannot read the live collection's family", exc_info=True)
        return None
    finally:
        store.close()


class RefusedWatcher:
    """Stands for a watcher that was not started, so the service's status says why."""

    def __init__(self, roots: Sequence[Path], reason: str) -> None:
        self.roots = tuple(roots)
        self.reason = reason

    def start(self) -> None:
        log.error("watch: not watching: %s", self.reason)

    def stop(self) -> None:
        pass

    def state(self) -> dict[str, Any]:
        """The shape of :meth:`ingest.watch.Watcher.state`, idle, with the reason."""
        roots = [{"path": str(r), "available": r.is_dir(), "problem": None} for r in self.roots]
        return {
            "enabled": False,
            "refused": self.reason,
            "roots": roots,
            "events": 0,
            "batches": 0,
            "last_event_at": None,
            "pending": 0,
            "reconcile_pending": [],
            "running_job": None,
            "last_job": None,
            "last_change": None,
            "polling": False,
            "problems": [self.reason],
        }


def service_watcher(
    settings: Settings, library: Library, jobs: IngestJobs, metrics: Metrics | None = None
) -> Watcher | RefusedWatcher:
    """The watcher of ``timbre serve``, or, when its jobs could only fail, one that says why."""
    refusal = watch_refusal(settings, library)
    if refusal is not None:
        return RefusedWatcher(watch_roots(settings), str(refusal))
    return build_watcher(settings, jobs, metrics)
