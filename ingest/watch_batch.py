"""The watcher's batcher: file events in, bounded ingest batches out (pure logic, no threads).

A :class:`ChangeBatcher` takes every event as a hint to look again: after ``debounce_s`` of
quiet a path is looked at; missing means gone, a folder is listed, a file is changed once its
size and mtime held ``settle_s``. Gone paths leave only with the last changed file. The
thread that feeds it and hands its batches to ingest jobs is :class:`ingest.watch.Watcher`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from timbre.fsutil import within

Signature = tuple[int, int, bool]
"""What a look at a path sees: (size in bytes, mtime in ns, is a folder)."""

Look = Callable[[str], Signature | None]
"""Looks at a path: its signature, or None when it is not there."""


def look(path: str) -> Signature | None:
    """The file system's answer for ``path`` (None: not there, or cannot be seen)."""
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, stat.S_ISDIR(st.st_mode)


def hidden(path: str, roots: Iterable[str]) -> bool:
    """True when a component below its root is hidden (discovery would skip it anyway)."""
    root = under(path, roots)
    below = path[len(root) :] if root is not None else ""
    return any(part.startswith(".") for part in below.split("/"))


def list_files(folder: str) -> list[str]:
    """Every non-hidden file below ``folder``, sorted (unreadable folders are skipped)."""
    out: list[str] = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out.extend(str(Path(top) / f) for f in files if not f.startswith("."))
    return sorted(out)


@dataclass(frozen=True)
class Batch:
    """One ingest job's worth of changes."""

    changed: tuple[str, ...] = ()
    gone: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.changed or self.gone)


@dataclass
class _Entry:
    last_event_s: float
    signature: Signature | None = None
    stable_since_s: float | None = None


@dataclass
class ChangeBatcher:
    """Collects events and hands out batches that are due (pure logic, no threads)."""

    debounce_s: float
    settle_s: float
    max_batch_files: int
    look: Look = look
    lister: Callable[[str], list[str]] = list_files
    _pending: dict[str, _Entry] = field(default_factory=dict)
    _ready: dict[str, None] = field(default_factory=dict)  # settled changed files, in order
    _gone: dict[str, None] = field(default_factory=dict)
    last_event_s: float | None = None

    def saw(self, path: str, now_s: float) -> None:
        """Record an event on ``path`` (any kind: the disk decides what it means)."""
        self.last_event_s = now_s
        entry = self._pending.get(path)
        if entry is None:
            self._pending[path] = _Entry(now_s)
        else:
            entry.last_event_s = now_s
            entry.stable_since_s = None  # touched again: settle afresh

    @property
    def pending(self) -> int:
        """Paths waiting: seen but not yet settled, settled but not yet handed out, or gone."""
        return len(self._pending) + len(self._ready) + len(self._gone)

    def take(self, now_s: float) -> Batch | None:
        """The next batch that is due, or None when nothing is."""
        self._settle(now_s)
        if not self._ready and not self._gone:
            return None
        changed = list(self._ready)[: self.max_batch_files]
        for path in changed:
            del self._ready[path]
        gone: list[str] = []
        if not self._ready and not self._pending:
            gone = _outermost(self._gone)
            self._gone.clear()
        if not changed and not gone:
            return None
        return Batch(tuple(changed), tuple(gone))

    def give_back(self, batch: Batch) -> None:
        """Put a batch that could not be started back, ahead of what came since."""
        self._ready = {**dict.fromkeys(batch.changed), **self._ready}
        self._gone = {**dict.fromkeys(batch.gone), **self._gone}

    def _settle(self, now_s: float) -> None:
        for path, entry in list(self._pending.items()):
            if now_s - entry.last_event_s < self.debounce_s:
                continue
            seen = self.look(path)
            if seen is None:
                del self._pending[path]
                self._ready.pop(path, None)
                self._gone[path] = None
                continue
            if seen[2]:  # a folder: what it holds was never announced one by one
                if self._busy_below(path):
                    continue
                del self._pending[path]
                for child in self.lister(path):
                    # Due for a look now, and still settling: a copy may be writing it.
                    self._pending.setdefault(child, _Entry(now_s - self.debounce_s))
                continue
            if seen != entry.signature or entry.stable_since_s is None:
                entry.signature, entry.stable_since_s = seen, now_s
            if now_s - entry.stable_since_s >= self.settle_s:
                del self._pending[path]
                self._gone.pop(path, None)  # deleted and then written again: changed
                self._ready[path] = None

    def _busy_below(self, folder: str) -> bool:
        """True while a path below ``folder`` is still waiting for its own quiet time."""
        prefix = folder.rstrip("/") + "/"
        return any(p.startswith(prefix) for p in self._pending)


def _outermost(paths: Iterable[str]) -> list[str]:
    """The paths, without those below another one (a gone folder covers its files)."""
    out: list[str] = []
    for path in sorted(paths):
        if not any(within(path, kept) for kept in out):
            out.append(path)
    return out


def under(path: str, roots: Iterable[str]) -> str | None:
    """The root ``path`` lies in (or is), else None."""
    return next((root for root in roots if within(path, root)), None)
