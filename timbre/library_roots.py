"""The library roots: the only folders whose files a service reads, and the one check of them.

A service accepts ``api.library_roots`` and the roots ingest recorded in the data dir, never
more. It fails closed: no usable root reads nothing; an unreadable roots file is a problem.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from timbre.errors import ForbiddenPathError
from timbre.fsutil import atomic_write
from timbre.store.pathtext import path_from_text, path_text

log = logging.getLogger(__name__)

ROOTS_FILE = "library_roots.json"


@dataclass(frozen=True)
class RecordedRoots:
    """What a data dir's roots file holds, and what is wrong with it (None: nothing)."""

    roots: list[Path]
    problem: str | None = None


def read_recorded_roots(data_dir: Path) -> RecordedRoots:
    """The roots ingest recorded in ``data_dir``; a missing file records none."""
    path = data_dir / ROOTS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return RecordedRoots([])
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return RecordedRoots([], f"{path} cannot be read ({reason})")
    try:
        data = json.loads(text)
    except ValueError as exc:
        return RecordedRoots([], f"{path} is not valid JSON ({exc})")
    texts = data.get("roots") if isinstance(data, dict) else None
    if not isinstance(texts, list) or not all(isinstance(t, str) and t for t in texts):
        return RecordedRoots([], f'{path} does not hold {{"roots": [folder, ...]}}')
    return RecordedRoots([path_from_text(t) for t in texts])


def recorded_roots(data_dir: Path) -> list[Path]:
    """The roots ingest recorded in ``data_dir``; an unusable file is logged and counts none."""
    recorded = read_recorded_roots(data_dir)
    if recorded.problem is not None:
        log.error("library roots: %s", recorded.problem)
    return recorded.roots


def record_roots(data_dir: Path, roots: Iterable[Path]) -> None:
    """Add ``roots`` (resolved) to the recorded ones; an unusable roots file is moved aside
    (``library_roots.json.corrupt-<time>``) first."""
    recorded = read_recorded_roots(data_dir)
    if recorded.problem is not None:
        aside = data_dir / f"{ROOTS_FILE}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}"
        with contextlib.suppress(OSError):
            (data_dir / ROOTS_FILE).replace(aside)
        log.warning("library roots: %s; moved aside to %s", recorded.problem, aside.name)
    known = [path_text(p) for p in recorded.roots]
    for root in roots:
        text = path_text(os.path.realpath(Path(root).expanduser()))
        if text not in known:
            known.append(text)
    content = json.dumps({"roots": sorted(known)}, indent=1) + "\n"
    atomic_write(data_dir / ROOTS_FILE, content, mkdir=True, private=True)


class LibraryRoots:
    """The folders a service may read files from (resolved here), and the check every reading
    route uses; ``problem``: what went wrong collecting them, reported beside them."""

    def __init__(self, roots: Iterable[Path], problem: str | None = None) -> None:
        self.paths = tuple(dict.fromkeys(Path(r).expanduser().resolve() for r in roots))
        self.problem = problem

    def why_none(self) -> str:
        """Why nothing may be read (only meaningful when there are no roots)."""
        text = "no library roots: api.library_roots is empty and no ingest recorded one"
        return f"{text} ({self.problem})" if self.problem else text

    def contains(self, real: Path) -> bool:
        """Whether an already resolved path lies in (or is) a root."""
        return any(real == root or real.is_relative_to(root) for root in self.paths)

    def check(self, path: str | Path, *, shown: str | None = None) -> Path:
        """``path`` resolved (strictly: it must exist) if it lies in a root, else
        ForbiddenPathError."""
        shown = shown if shown is not None else repr(str(path))
        if not self.paths:
            raise ForbiddenPathError(f"{self.why_none()}, so no path is accepted")
        try:
            source = path_from_text(path) if isinstance(path, str) else path
            real = source.expanduser().resolve(strict=True)
        except (OSError, RuntimeError, ValueError) as exc:  # ValueError: an escaped NUL byte
            raise ForbiddenPathError(f"path {shown} is not inside a library root") from exc
        if not self.contains(real):
            raise ForbiddenPathError(f"path {shown} is not inside a library root")
        return real
