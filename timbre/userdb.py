"""One SQLite file of the user's own data (collections, kits), kept in the data dir.

Opened on first use and again after a failure, so a damaged file never stops search; every
change is one immediate transaction; and a failure reaches the caller as what it means to a
person, naming the file and the way out (a full disk, a damaged file, anything else).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

from timbre.diskspace import disk_full_cause
from timbre.errors import DiskFullError, UnavailableError


class UserFile:
    """Base of a user data file: ``WHAT`` names it in messages (``"collections"``),
    ``SCHEMA`` is its idempotent DDL, ``UNAVAILABLE`` the error a failing file raises."""

    WHAT: ClassVar[str]
    SCHEMA: ClassVar[str]
    UNAVAILABLE: ClassVar[type[UnavailableError]]

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _prepare(self, db: sqlite3.Connection) -> None:
        """Rows every new file starts with (after the schema); none by default."""

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.executescript(self.SCHEMA)  # idempotent; executescript commits by itself
            self._prepare(db)
        except BaseException:
            db.close()
            raise
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                if self._db is None:
                    self._db = self._connect()
                db = self._db
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._domain_error(exc) from exc

    def _domain_error(self, exc: sqlite3.Error) -> Exception:
        """What a failure of the file means to a person, naming the file and the way out."""
        what = f"the {self.WHAT} file {self.path}"
        if disk_full_cause(exc) is not None:
            return DiskFullError(
                f"disk full: {what} cannot be written ({exc}); nothing was changed. Free some "
                "space and try again."
            )
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF  # the primary code
        if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            # The handle may hold a damaged page cache: open afresh on the next call.
            if self._db is not None:
                self._db.close()
                self._db = None
            return self.UNAVAILABLE(
                f"{what} is damaged ({exc}). Search is unaffected. To recover, move it aside "
                f"(mv {self.path} {self.path}.damaged, with its -wal and -shm files if any): "
                "the next request starts a new, empty one. Or stop Timbre and restore the file "
                "from a backup."
            )
        return self.UNAVAILABLE(f"{what} failed: {exc}")

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
