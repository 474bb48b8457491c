"""Which files of a snapshot have been checked against their sha256, and are unchanged since.

Hashing every file is most of the service's start-up, and published files never change, so
``VERIFIED.json`` caches each checked file's identity (device, inode, size, mtime, ctime: any
write or restore changes one) and later loads hash only files whose identity differs. A disk
decaying under an unchanged file is what ``snapshot.reverify_unchanged`` is for.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from timbre.fsutil import atomic_write

log = logging.getLogger(__name__)

VERIFIED_FILE = "VERIFIED.json"


def identity(path: Path) -> list[int]:
    """What changes whenever the file's bytes could have changed."""
    st = path.stat()
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


class VerifiedFiles:
    """The record of one snapshot directory: read once, updated as files pass their check."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / VERIFIED_FILE
        self._entries = self._read()
        self._changed = False

    def unchanged(self, name: str, ident: list[int], sha256: str) -> bool:
        """True when ``name`` matched ``sha256`` before and its identity is still ``ident``."""
        entry = self._entries.get(name)
        return (
            isinstance(entry, dict)
            and entry.get("sha256") == sha256
            and entry.get("identity") == ident
        )

    def passed(self, name: str, ident: list[int], sha256: str) -> None:
        """``name`` matched ``sha256`` when hashed; ``ident`` is its identity from before the
        hash (a file changed while being hashed then differs from it, and is hashed again)."""
        self._entries[name] = {"sha256": sha256, "identity": ident}
        self._changed = True

    def save(self) -> None:
        """Write the record if it changed (atomically; a failure only costs the next load)."""
        if not self._changed:
            return
        try:
            atomic_write(self.path, json.dumps(self._entries, sort_keys=True))
        except OSError as exc:
            log.info("cannot record verified snapshot files in %s: %s", self.path, exc)
        self._changed = False

    def _read(self) -> dict[str, Any]:
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return entries if isinstance(entries, dict) else {}
