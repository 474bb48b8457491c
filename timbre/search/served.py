"""Which file an indexed item may be served from: inside the library roots, and still the
sample that was indexed.

A path stored at ingest is only a hint of where the bytes were. Before the service streams,
renders or exports a file it checks, every time, that the path resolves (symlinks
followed) into a library root and that the file there still has the indexed content hash.
A symlink leading out of the roots is refused; a file replaced in place (rewritten, or
swapped for a hard link to something else) is reported as changed, not served as the sample.

Hashes are remembered per file identity (device, inode, size, mtime, ctime): a file that did
not change is hashed once, so seeking in a player costs nothing; any replacement changes the
identity and is hashed again.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, BinaryIO

from timbre.errors import ContentChangedError, ForbiddenPathError, NotFoundError
from timbre.library_roots import LibraryRoots
from timbre.store.pathtext import path_from_text

_MEMO = 4096  # file identities -> sha256 remembered


def _identity(stat: os.stat_result) -> tuple[int, ...]:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


class ServedFiles:
    """Finds and checks the file of an indexed item.

    Args:
        roots: the one roots check (:class:`timbre.library_roots.LibraryRoots`).
        max_file_bytes: a file larger than this cannot be one that was indexed.
    """

    def __init__(self, roots: LibraryRoots, max_file_bytes: int) -> None:
        self.roots = roots
        self.max_file_bytes = max_file_bytes
        self._memo: OrderedDict[tuple[int, ...], str] = OrderedDict()
        self._lock = threading.Lock()

    def file_of(self, item_id: str, payload: dict[str, Any]) -> Path:
        """The first of the item's paths that lies in a root and holds the indexed content
        (see :meth:`open_of` for the errors)."""
        path, handle = self.open_of(item_id, payload)
        handle.close()
        return path

    def open_of(self, item_id: str, payload: dict[str, Any]) -> tuple[Path, BinaryIO]:
        """Like :meth:`file_of`, with the file left open: the handle whose content was checked
        is the one to send, so a file swapped in after the check is not served.

        Raises:
            ForbiddenPathError: there are no library roots, or the item's files lie outside.
            ContentChangedError: a file is where it was, but with other content.
            NotFoundError: none of its files exists any more.
        """
        if not self.roots.paths:
            raise ForbiddenPathError(f"{self.roots.why_none()}, so no file is served")
        expected = str(payload.get("content_sha256") or "").lower()
        outside = changed = None
        for candidate in payload.get("paths") or [payload.get("path")]:
            if not candidate or "\x00" in candidate:
                continue
            try:
                real = path_from_text(candidate).resolve(strict=True)
            except (OSError, RuntimeError):
                continue
            if not self.roots.contains(real):
                outside = candidate
                continue
            if not real.is_file():
                continue
            try:
                handle = real.open("rb")
            except OSError:
                continue
            try:
                if self.holds(handle, expected):
                    return real, handle
            except OSError:
                pass
            handle.close()
            changed = candidate
        if changed is not None:
            raise ContentChangedError(
                f"item {item_id}: {changed} no longer holds the indexed sample (its content "
                "changed since it was indexed); ingest it again to serve the new content"
            )
        if outside is not None:
            raise ForbiddenPathError(
                f"item {item_id}: its file leads outside the library roots (a symlink?), "
                "so it is not served"
            )
        raise NotFoundError(f"item {item_id} has no readable file inside the library roots")

    def holds(self, handle: io.BufferedReader, expected: str) -> bool:
        """Whether the open file has the content hash ``expected`` (read from the handle that
        will be served: a file swapped for another after the check is not what gets sent)."""
        if not expected:
            return False
        stat = os.fstat(handle.fileno())
        if stat.st_size > self.max_file_bytes:
            return False
        key = _identity(stat)
        with self._lock:
            known = self._memo.get(key)
            if known is not None:
                self._memo.move_to_end(key)
        if known is None:
            position = handle.tell()
            known = hashlib.file_digest(handle, "sha256").hexdigest()
            handle.seek(position)
            with self._lock:
                self._memo[key] = known
                while len(self._memo) > _MEMO:
                    self._memo.popitem(last=False)
        return known == expected
