"""Which file an indexed item may be served from: inside the library roots, and still the
sample that was indexed.

Before every stream, rendition or export, the stored path must resolve (symlinks followed)
into a library root and still have the indexed content hash. Hashes are remembered per file
identity (device, inode, size, mtime, ctime), so only a changed file is hashed again.
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
    """Finds and checks the file of an indexed item (one larger than ``max_file_bytes``
    cannot be one that was indexed)."""

    def __init__(self, roots: LibraryRoots, max_file_bytes: int) -> None:
        self.roots = roots
        self.max_file_bytes = max_file_bytes
        self._memo: OrderedDict[tuple[int, ...], str] = OrderedDict()
        self._lock = threading.Lock()

    def open_of(self, item_id: str, payload: dict[str, Any]) -> tuple[Path, BinaryIO]:
        """The first of the item's paths in a root holding the indexed content, opened: that
        checked handle is the one to send, so a file swapped in after the check is not served."""
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
                return real, self.open_checked(real, expected)
            except ContentChangedError:
                changed = candidate
            except OSError:
                continue
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

    def open_checked(self, path: Path, expected: str) -> BinaryIO:
        """``path`` opened, if it holds the content hashed ``expected`` (checked on the handle
        returned, so a file swapped in after the check is not what is read). OSError: it
        cannot be opened; ContentChangedError: it holds something else now."""
        handle = path.open("rb")
        try:
            if self.holds(handle, expected):
                return handle
        except OSError:
            pass  # unreadable past its opening: not the indexed sample either
        handle.close()
        raise ContentChangedError(f"{path} no longer holds the indexed sample (content changed)")

    def holds(self, handle: io.BufferedReader, expected: str) -> bool:
        """Whether the open file (the handle that will be served) has the hash ``expected``."""
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
