"""``--prune``: forget the paths under the roots that are known to be gone, and nothing else.

A path not found again is dropped only when ``lstat`` says "no such file" and the nearest
existing folder above can be listed and is no absent drive (a missing or empty library root
or mount point); anything else is kept and reported (docs/paths.md). A point left with no
path is deleted; paths outside the job's roots are never touched.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from timbre.fsutil import within
from timbre.store import Collection
from timbre.store.pathtext import path_from_text, path_text

_GONE_ERRNOS = (errno.ENOENT, errno.ENOTDIR)
_OCTAL = re.compile(r"\\([0-7]{3})")
MOUNT_TABLE = Path("/etc/fstab")
"""Where the mount points configured on this machine are listed (mounted or not)."""


@dataclass
class PruneOutcome:
    """What a prune did (or, in a dry run, would do)."""

    pruned_paths: int = 0
    deleted_points: int = 0
    kept: list[tuple[str, str]] = field(default_factory=list)  # (path, why it was kept)
    pruned: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    touched: list[str] = field(default_factory=list)  # ids left with fewer paths

    def as_dict(self, dry_run: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"kept": [{"path": p, "why": why} for p, why in self.kept]}
        if dry_run:
            out.update(paths=self.pruned, points=self.deleted)
        return out


def configured_mount_points(table: Path = MOUNT_TABLE) -> frozenset[Path]:
    """The mount points ``table`` (fstab format) names; none when it cannot be read."""
    try:
        lines = table.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return frozenset()
    points = set()
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and fields[1].startswith("/"):
            # fstab escapes blanks in a path as octal (\040).
            text = _OCTAL.sub(lambda m: chr(int(m[1], 8)), fields[1])
            points.add(Path(os.path.normpath(text)))
    return frozenset(points)


class _Whereabouts:
    """Is a path that the scan did not find known to be gone? (Folders looked at once.)"""

    def __init__(self, library_roots: Iterable[Path], mount_points: frozenset[Path]) -> None:
        self._roots = frozenset(library_roots)
        self._mounts = mount_points
        self._folders: dict[Path, str | None] = {}  # folder -> why nothing below is gone

    def why_kept(self, text: str) -> str | None:
        """None when the path is known to be gone, else why it must be kept."""
        path = path_from_text(text)
        try:
            path.lstat()
        except OSError as exc:
            if exc.errno not in _GONE_ERRNOS:
                return f"cannot be read: {exc.strerror}"
        else:
            return "still on disk, but this run did not read it"
        return self._folder(path.parent)

    def _folder(self, folder: Path) -> str | None:
        if folder in self._folders:
            return self._folders[folder]
        why: str | None
        try:
            folder.lstat()
        except OSError as exc:
            if exc.errno not in _GONE_ERRNOS:
                why = f"{path_text(folder)} cannot be read: {exc.strerror}"
            elif folder in self._roots:
                why = f"library root {path_text(folder)} is missing (an unmounted drive?)"
            else:
                why = self._folder(folder.parent) if folder.parent != folder else None
        else:
            try:
                with os.scandir(folder) as entries:
                    empty = next(entries, None) is None
            except OSError as exc:
                why = f"{path_text(folder)} cannot be listed: {exc.strerror}"
            else:
                why = self._unmounted(folder) if empty else None
        self._folders[folder] = why
        return why

    def _unmounted(self, folder: Path) -> str | None:
        """Why an empty ``folder`` may be a drive not mounted right now, or None."""
        if folder in self._roots:
            what = "an empty library root"
        elif folder in self._mounts or os.path.ismount(folder):
            what = "an empty mount point"
        else:
            return None  # its files were moved or deleted
        return (
            f"{path_text(folder)} is {what} (an unmounted drive looks like this; "
            "remove the folder to forget its files)"
        )


def prune(
    store: Collection,
    *,
    roots: Iterable[str],
    library_roots: Iterable[str] | None = None,
    here_now: Mapping[str, set[str]],
    hashed: Mapping[str, str | None],
    shard: Callable[[str], bool],
    dry_run: bool,
) -> PruneOutcome:
    """Drop stored paths under ``roots`` (the job's roots or a batch's paths) that are gone
    or hold other content now. ``library_roots`` defaults to ``roots``; ``here_now``: hash ->
    paths found this run; ``hashed``: path read -> its hash (None: unreadable)."""
    roots = list(roots)
    outcome = PruneOutcome()
    library = roots if library_roots is None else library_roots
    where = _Whereabouts((path_from_text(r) for r in library), configured_mount_points())
    for record in store.scroll(fields=["paths", "content_sha256"]):
        pid, sha = record.id, str(record.payload.get("content_sha256", ""))
        paths = list(record.payload.get("paths") or [])
        if not sha or not shard(sha):
            continue
        found = here_now.get(sha, set())
        keep = []
        for path in paths:
            if not any(within(path, r) for r in roots) or path in found:
                keep.append(path)
                continue
            if path in hashed:
                why = None if hashed[path] is not None else "could not be read"
            else:
                why = where.why_kept(path)
            if why is None:
                outcome.pruned.append(path)
            else:
                keep.append(path)
                outcome.kept.append((path, why))
        if len(keep) == len(paths):
            continue
        outcome.pruned_paths += len(paths) - len(keep)
        if not keep:
            outcome.deleted.append(pid)
        elif not dry_run:
            store.set_paths(pid, sorted(keep))
            outcome.touched.append(pid)
    outcome.deleted_points = len(outcome.deleted)
    if outcome.deleted and not dry_run:
        store.delete(outcome.deleted)
    return outcome
