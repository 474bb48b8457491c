"""Watched folders: file events under the library roots become ordinary ingest jobs.

One thread feeds ``watchfiles`` events to a :class:`~ingest.watch_batch.ChangeBatcher` and
hands due batches to a :class:`JobSink`. At start, and when a root comes back, a reconciliation
job prunes it. Events are hints, the disk is the truth: a path is looked at after
``debounce_s`` of quiet; missing means gone, a folder is listed, a file is changed once its
size and mtime held ``settle_s``. Gone paths leave only with the last changed file, so a
renamed folder's new paths are recorded before the old ones go (else its points would be
deleted and embedded again).
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ingest.watch_batch import Batch, ChangeBatcher, hidden, under
from timbre.fsutil import now_iso

log = logging.getLogger("timbre.watch")

INOTIFY_WATCHES = Path("/proc/sys/fs/inotify/max_user_watches")

INOTIFY_FIX = (
    "raise the limit: `sudo sysctl fs.inotify.max_user_watches=524288` (and put "
    "`fs.inotify.max_user_watches=524288` in /etc/sysctl.d/90-timbre.conf to keep it)"
)


@dataclass(frozen=True)
class WatchOptions:
    """How to watch (the ``watch`` settings)."""

    roots: tuple[Path, ...]
    debounce_s: float
    settle_s: float
    max_batch_files: int
    tick_s: float
    reconcile_on_start: bool = True


class JobSink(Protocol):
    """Runs the watcher's jobs (wired by the composition root to the API's job runner)."""

    def submit(self, roots: Sequence[str], batch: Batch | None) -> str | None:
        """Start a job for ``batch`` (None: reconcile the roots); None while another runs."""
        ...

    def outcome(self, job_id: str) -> dict[str, Any] | None:
        """The finished job's status, or None while it runs."""
        ...


@dataclass
class RootState:
    """A watched root as last looked at."""

    path: str
    available: bool = False
    problem: str | None = None
    identity: tuple[int, int] | None = None  # (device, inode): a remount changes it

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "available": self.available, "problem": self.problem}


def check_root(path: str) -> RootState:
    """Can ``path`` be watched now? Unreadable and empty roots are not (nothing is deleted)."""
    try:
        st = Path(path).stat()
        with os.scandir(path) as entries:
            empty = next(entries, None) is None
    except OSError as exc:
        return RootState(path, False, f"cannot be read: {exc.strerror or exc}")
    if empty:
        return RootState(path, False, "is empty (an unplugged drive's mount point looks like this)")
    return RootState(path, True, None, (st.st_dev, st.st_ino))


def inotify_problem(roots: Sequence[str], limit_file: Path = INOTIFY_WATCHES) -> str | None:
    """Why inotify cannot watch every folder under ``roots`` (one watch per folder), or None."""
    try:
        limit = int(limit_file.read_text().strip())
    except (OSError, ValueError):
        return None  # not Linux, or not readable: nothing to say
    folders = 0
    for root in roots:
        for _, dirs, _ in os.walk(root):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            folders += 1
    if folders <= limit:
        return None
    return (
        f"{folders} folders to watch but fs.inotify.max_user_watches is {limit}: {INOTIFY_FIX}; "
        "polling instead meanwhile"
    )


@dataclass
class _Status:
    """What the watcher reports (``/v1/stats``), guarded by the watcher's lock."""

    events: int = 0
    batches: int = 0
    last_event_at: str | None = None
    last_job: dict[str, Any] | None = None
    last_change: dict[str, Any] | None = None  # the last job whose summary says ``changed``
    running_job: str | None = None
    polling: bool = False
    problems: list[str] = field(default_factory=list)


class Watcher:
    """Watches the roots in one thread. ``on_event`` gets each event's kind; ``on_batch``
    each batch started: (changed files, gone paths, lag since its oldest event)."""

    def __init__(
        self,
        options: WatchOptions,
        sink: JobSink,
        *,
        on_event: Callable[[str], None] | None = None,
        on_batch: Callable[[int, int, float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.o = options
        self.sink = sink
        self.roots = tuple(dict.fromkeys(real_root(r) for r in options.roots))
        self.batcher = ChangeBatcher(options.debounce_s, options.settle_s, options.max_batch_files)
        self._on_event = on_event
        self._on_batch = on_batch
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._status = _Status()
        self._states = {r: RootState(r) for r in self.roots}
        self._reconcile: set[str] = set()
        self._first_unhandled_s: float | None = None

    def start(self) -> None:
        """Look at the roots, schedule the reconciliation, and start watching."""
        if not self.roots:
            self._problem(
                "no folders to watch: set watch.roots, api.library_roots, or index a library"
            )
        self._check_roots(first=True)
        if self.o.reconcile_on_start:
            self._reconcile = {r for r, s in self._states.items() if s.available}
        self._thread = threading.Thread(target=self._run, name="timbre-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """End the watching thread (a running job finishes inside the job runner)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.error("watch: the watching thread did not stop within %.0f s", timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def state(self) -> dict[str, Any]:
        """Roots, last change seen, pending paths, the last job's summary, problems."""
        with self._lock:
            s = self._status
            return {
                "enabled": True,
                "roots": [self._states[r].as_dict() for r in self.roots],
                "events": s.events,
                "batches": s.batches,
                "last_event_at": s.last_event_at,
                "pending": self.batcher.pending,
                "reconcile_pending": sorted(self._reconcile),
                "running_job": s.running_job,
                "last_job": s.last_job,
                "last_change": s.last_change,
                "polling": s.polling,
                "problems": list(s.problems),
            }

    def _run(self) -> None:
        import watchfiles

        # Here, not in start(): counting the folders of a big library takes a walk.
        problem = inotify_problem([r for r, s in self._states.items() if s.available])
        if problem:
            self._problem(problem)
            with self._lock:
                self._status.polling = True
        while not self._stop.is_set():
            watched = [r for r, s in self._states.items() if s.available]
            if not watched:
                self._pump(self._clock())
                self._stop.wait(self.o.tick_s)
                self._check_roots()
                continue
            try:
                for changes in watchfiles.watch(
                    *watched,
                    watch_filter=None,
                    debounce=50,
                    step=20,
                    stop_event=self._stop,
                    rust_timeout=max(1, int(self.o.tick_s * 1000)),
                    yield_on_timeout=True,
                    raise_interrupt=False,
                    force_polling=self._status.polling,
                    ignore_permission_denied=True,
                ):
                    restart = self._feed(changes)
                    restart = self._check_roots() or restart
                    self._pump(self._clock())
                    if restart or self._stop.is_set():
                        break
            except OSError as exc:
                self._watch_failed(exc)
            except Exception as exc:  # a watcher error must not end the service
                log.exception("watch: watching failed; trying again")
                self._problem(f"watching failed: {type(exc).__name__}: {exc}")
                self._stop.wait(self.o.tick_s)

    def _feed(self, changes: set[tuple[Any, str]]) -> bool:
        """Hand events to the batcher; True when a root itself changed (watch it afresh)."""
        now = self._clock()
        restart = False
        for change, path in changes:
            if path in self._states:
                restart = True
                continue
            if under(path, self.roots) is None or hidden(path, self.roots):
                continue
            self.batcher.saw(path, now)
            if self._first_unhandled_s is None:
                self._first_unhandled_s = now
            with self._lock:
                self._status.events += 1
                self._status.last_event_at = now_iso()
            if self._on_event is not None:
                self._on_event(getattr(change, "name", str(change)))
        return restart

    def _check_roots(self, first: bool = False) -> bool:
        """Look at every root again; True when one came, went or was replaced."""
        moved = False
        for root in self.roots:
            before, now = self._states[root], check_root(root)
            if now.available and not before.available and not first:
                log.info("watch: %s is back: reconciling it", root)
                self._reconcile.add(root)
            if now.available != before.available or now.identity != before.identity:
                moved = True
                if not now.available:
                    log.warning(
                        "watch: library root %s %s: nothing of it is deleted", root, now.problem
                    )
            with self._lock:
                self._states[root] = now
        return moved and not first

    def _pump(self, now_s: float) -> None:
        """Follow the running job; when none runs, start the next one that is due."""
        with self._lock:
            running = self._status.running_job
        if running is not None:
            outcome = self.sink.outcome(running)
            if outcome is None:
                return
            with self._lock:
                self._status.running_job = None
                self._status.last_job = {"job_id": running, **outcome}
                if (outcome.get("summary") or {}).get("changed"):
                    self._status.last_change = self._status.last_job
        available = [r for r, s in self._states.items() if s.available]
        if self._reconcile:
            roots = sorted(r for r in self._reconcile if r in available)
            self._reconcile.clear()
            if roots:
                self._start(roots, None, now_s)
            return
        batch = self.batcher.take(now_s)
        if batch is None:
            return
        # What lies under a root that went away waits for that root's reconciliation.
        batch = Batch(
            tuple(p for p in batch.changed if under(p, available)),
            tuple(p for p in batch.gone if under(p, available)),
        )
        if not batch:
            return
        roots = sorted({r for p in (*batch.changed, *batch.gone) if (r := under(p, available))})
        if not self._start(roots, batch, now_s):
            self.batcher.give_back(batch)

    def _start(self, roots: list[str], batch: Batch | None, now_s: float) -> bool:
        with self._lock:  # started and recorded as one step, for state()
            job = self.sink.submit(roots, batch)
            if job is not None:
                self._status.running_job = job
        if job is None:  # another job runs (one started through the API): try again later
            if batch is None:
                self._reconcile.update(roots)
            return False
        lag_s = 0.0 if self._first_unhandled_s is None else now_s - self._first_unhandled_s
        self._first_unhandled_s = None if not self.batcher.pending else now_s
        with self._lock:
            self._status.batches += 1
        changed, gone = (len(batch.changed), len(batch.gone)) if batch else (0, 0)
        log.info(
            "watch: job %s for %d changed, %d gone (%s)",
            job,
            changed,
            gone,
            "batch" if batch else "reconciliation",
        )
        if self._on_batch is not None:
            self._on_batch(changed, gone, lag_s)
        return True

    def _watch_failed(self, exc: OSError) -> None:
        text = str(exc)
        if exc.errno == errno.ENOSPC or "limit" in text.lower():
            self._problem(f"the OS refused more file watches ({text}): {INOTIFY_FIX}; polling")
            with self._lock:
                self._status.polling = True
        else:
            self._problem(f"cannot watch: {text}")
            self._stop.wait(self.o.tick_s)
        self._check_roots()

    def _problem(self, text: str) -> None:
        log.warning("watch: %s", text)
        with self._lock:
            if text not in self._status.problems:
                self._status.problems.append(text)


def real_root(root: Path) -> str:
    """A root as the watcher and the store see it: absolute, links resolved."""
    return os.path.realpath(root.expanduser())
