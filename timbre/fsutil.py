"""Small file-system helpers every package uses: atomic replacement, content hashes, UTC stamps."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def replacing(
    path: Path, *, durable: bool = False, mkdir: bool = False, private: bool = False
) -> Iterator[Path]:
    """A temporary path beside ``path`` (unique per call) for the caller to write; it replaces
    ``path`` when the block ends without error, so a reader never sees half a file.
    ``durable``: fsync the file and its folder; ``mkdir``: create the folders above first;
    ``private``: the file is readable by its owner only (0600)."""
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        if private:  # created 0600 before anything is written into it
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        yield tmp
        if durable:
            with tmp.open("rb+") as handle:
                os.fsync(handle.fileno())
        tmp.replace(path)
        if durable:
            fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(
    path: Path,
    data: bytes | str,
    *,
    durable: bool = False,
    mkdir: bool = False,
    private: bool = False,
) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8) through :func:`replacing`."""
    with replacing(path, durable=durable, mkdir=mkdir, private=private) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's content, hex."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def within(path: str, root: str) -> bool:
    """Whether the path text ``path`` is ``root`` or lies below it (no file system access)."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def now_iso(timespec: str = "seconds") -> str:
    """The time now, ISO 8601 in UTC (``2026-01-31T12:00:00+00:00``)."""
    return datetime.now(UTC).isoformat(timespec=timespec)


def now_stamp() -> str:
    """The time now in UTC for file names (``20260131T120000Z``)."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
