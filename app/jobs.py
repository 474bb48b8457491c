"""Ingest jobs run inside the service, one at a time, reusing its loaded models and store.

The composition root wires the job (the app never imports ``ingest``) and hands the app a
runner ``(request, on_progress) -> (summary, exit_code)``.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from app.schemas import IngestIn
from timbre.diskspace import disk_full_cause
from timbre.errors import ConflictError, ExitCode, NotFoundError, TimbreError
from timbre.fsutil import now_iso

log = logging.getLogger("timbre.api")

MAX_FAILURES_SHOWN = 50


class IngestRunner(Protocol):
    def __call__(
        self, request: IngestIn, on_progress: Callable[[dict[str, Any]], None]
    ) -> tuple[dict[str, Any], int]: ...


@dataclass
class Job:
    job_id: str
    paths: list[str]
    state: str = "running"
    started_at: str = field(default_factory=now_iso)
    finished_at: str | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] | None = None
    exit_code: int | None = None
    error: str | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)


class IngestJobs:
    """Starts jobs in a background thread and keeps their status for polling."""

    def __init__(
        self,
        runner: IngestRunner | None,
        on_change: Callable[[int], None] | None = None,
        precheck: Callable[[], None] | None = None,
    ) -> None:
        self.runner = runner
        self._precheck = precheck
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._on_change = on_change

    @property
    def running(self) -> int:
        return sum(job.state == "running" for job in self.jobs.values())

    def start(self, request: IngestIn) -> Job:
        if self.runner is None:
            raise ConflictError("this service was started without ingest support")
        if self._precheck is not None and not request.dry_run:
            self._precheck()  # e.g. a full disk: refused now, not after minutes of embedding
        with self._lock:
            if self.running:
                raise ConflictError(
                    "an ingest job is already running; poll it or wait for it to finish"
                )
            job = Job(job_id=uuid.uuid4().hex[:12], paths=list(request.paths))
            self.jobs[job.job_id] = job
        self._changed()
        threading.Thread(
            target=self._run, args=(job, request), name=f"ingest-{job.job_id}", daemon=True
        ).start()
        return job

    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"no ingest job {job_id}")
        return job

    def _run(self, job: Job, request: IngestIn) -> None:
        assert self.runner is not None
        try:
            summary, code = self.runner(request, job.progress.update)
            job.summary, job.exit_code, job.state = summary, code, "finished"
            report = (summary.get("failures") or {}).get("report")
            if report:
                job.failures = _read_failures(report)
        except Exception as exc:  # the job's error is its result; the service stays up
            log.exception("ingest job %s failed", job.job_id)
            could_not_run = isinstance(exc, TimbreError) or disk_full_cause(exc)
            code = ExitCode.FAILED if could_not_run else ExitCode.CRASHED
            job.state, job.error, job.exit_code = "failed", f"{type(exc).__name__}: {exc}", code
        finally:
            job.finished_at = now_iso()
            self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.running)


def _read_failures(report: str) -> list[dict[str, Any]]:
    try:
        with Path(report).open(encoding="utf-8") as handle:
            return [json.loads(line) for line in itertools.islice(handle, MAX_FAILURES_SHOWN)]
    except OSError:
        return []
