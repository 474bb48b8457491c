"""Free space on the data dir's file system, checked before the store writes.

Qdrant Edge writes sparse files through memory maps, and a page the disk cannot back kills
the process (SIGBUS). So a write is refused first (DiskFullError) unless free space covers the
store's sparse debt (size beyond allocated blocks), the batch and ``disk.min_free_bytes``.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from timbre.errors import DiskFullError

FILLS_ON_READ = frozenset({"tmpfs", "ramfs", "shm"})
"""File systems where reading a hole of a shared memory map allocates a page (shmem): there,
opening a shard claims its whole sparse debt at once."""

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged process may still write on ``path``'s file system (``path`` or
    its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    stat = os.statvfs(probe)
    return stat.f_bavail * stat.f_frsize


def sparse_debt(directory: Path) -> int:
    """Bytes the files under ``directory`` may still claim: size beyond allocated blocks."""
    debt = 0
    for folder, _, files in os.walk(directory):
        for name in files:
            try:
                stat = (Path(folder) / name).lstat()
            except OSError:
                continue  # removed meanwhile (the engine replaces files as it goes)
            debt += max(0, stat.st_size - stat.st_blocks * 512)
    return debt


def filesystem_type(path: Path) -> str | None:
    """The type of the file system holding ``path`` (``ext4``, ``tmpfs``...), from
    ``/proc/self/mountinfo``; None where that cannot be read (not Linux)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    target = os.path.realpath(path)
    best, kind = "", None
    for line in lines:
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 5 or not right:
            continue
        mount = fields[4].replace("\\040", " ")
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, right.split()[0]
    return kind


def megabytes(n: int) -> str:
    return f"{n / 1_048_576:.1f} MiB"


@dataclass(frozen=True)
class DiskReserve:
    """The free space (``disk.min_free_bytes``) kept on the file system of ``path``."""

    path: Path
    min_free_bytes: int

    def check(self, need: int, what: str, *, reserve: bool = True) -> None:
        """Refuse ``what`` (DiskFullError) unless ``need`` bytes plus the reserve are free."""
        free = free_bytes(self.path)
        wanted = need + (self.min_free_bytes if reserve else 0)
        if free >= wanted:
            return
        parts = [megabytes(need)] if need or not reserve else []
        if reserve:
            parts.append(f"the {megabytes(self.min_free_bytes)} reserve (disk.min_free_bytes)")
        raise DiskFullError(
            f"disk full: {what} needs {' plus '.join(parts)} on the file system of "
            f"{self.path}, which has {megabytes(free)} free. Nothing was "
            "written; free some space (or move the data dir to a larger disk) and run it again."
        )

    def status(self) -> dict[str, Any]:
        """Free space and whether it is below the reserve (``/readyz``, ``/v1/stats``)."""
        free = free_bytes(self.path)
        return {
            "path": str(self.path),
            "free_bytes": free,
            "min_free_bytes": self.min_free_bytes,
            "low": free < self.min_free_bytes,
        }


def disk_full_cause(exc: BaseException) -> BaseException | None:
    """The error in ``exc``'s chain that says the disk (or a quota) is full, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DiskFullError):
            return current
        if isinstance(current, OSError) and current.errno in _FULL_ERRNOS:
            return current
        if isinstance(current, sqlite3.Error) and (
            (getattr(current, "sqlite_errorcode", None) or 0) & 0xFF == sqlite3.SQLITE_FULL
            or "disk is full" in str(current)
        ):
            return current
        current = current.__cause__ or current.__context__
    return None


def as_disk_full(exc: BaseException, what: str) -> DiskFullError | None:
    """A :class:`DiskFullError` for ``exc`` when the disk being full caused it, else None."""
    cause = disk_full_cause(exc)
    if cause is None:
        return None
    if isinstance(cause, DiskFullError):
        return cause
    return DiskFullError(
        f"disk full: {what} failed: {cause}. Free some space (or move the data dir to a "
        "larger disk) and try again."
    )
