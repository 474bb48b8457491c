"""Favourites and named collections of samples, kept with the data dir and shared by every door.

The page, the HTTP API and the MCP server all read and write the same collections, so an
assistant and a person see the same "Favourites". They live in one SQLite file beside the
store (``<data_dir>/collections.sqlite``), not in Qdrant: they are the user's own data and must
survive a re-index, a model change or a deleted collection. Items are point ids; a point's id
derives from its content, so a re-index of the same files keeps every item. The path the item
had when it was added is kept as a hint, for a person reading a collection whose sample has
since left the index.

``favourites`` always exists and cannot be deleted. SQLite in WAL mode with a busy timeout lets
a service and a command (``timbre mcp`` on its own) share the file safely.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from timbre.diskspace import disk_full_cause
from timbre.errors import (
    ConflictError,
    DiskFullError,
    InvalidRequestError,
    NotFoundError,
    UnavailableError,
)

FAVOURITES = "favourites"
"""The built-in collection a star adds to."""

COLLECTIONS_FILE = "collections.sqlite"
"""File name under the data dir."""

MAX_NAME_CHARS = 64
MAX_ITEMS_PER_CALL = 500
"""Most ids one add/remove call takes: a page of results, not a whole library."""

_NAME = re.compile(r"[^\x00-\x1f\x7f/\\]+")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS collections (
    name TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    collection TEXT NOT NULL REFERENCES collections(name) ON DELETE CASCADE,
    point_id TEXT NOT NULL,
    path_hint TEXT,
    added_at TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (collection, point_id)
);
CREATE INDEX IF NOT EXISTS items_by_point ON items(point_id);
"""


@dataclass(frozen=True)
class CollectionInfo:
    """A collection's name, size and times (ISO 8601 UTC)."""

    name: str
    count: int
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class CollectionItem:
    """One sample of a collection, in the order it was added."""

    id: str
    added_at: str
    path_hint: str | None


class CollectionsUnavailableError(UnavailableError):
    """The collections file cannot be used (damaged, unreadable); the message says what to do."""

    code = "collections_unavailable"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_name(name: str) -> str:
    """A collection name as given, trimmed, if it is usable.

    Raises:
        InvalidRequestError: empty, too long, or holding control characters or slashes (names
            become folder and zip names on export).
    """
    text = name.strip()
    if not text or len(text) > MAX_NAME_CHARS or not _NAME.fullmatch(text):
        raise InvalidRequestError(
            f"a collection name needs 1 to {MAX_NAME_CHARS} characters, without control "
            f"characters or slashes (got {name!r})"
        )
    return text


def _check_ids(ids: Sequence[str]) -> list[str]:
    if len(ids) > MAX_ITEMS_PER_CALL:
        raise InvalidRequestError(f"at most {MAX_ITEMS_PER_CALL} ids per call")
    bad = [i for i in ids if not isinstance(i, str) or not _UUID.fullmatch(i)]
    if bad:
        raise InvalidRequestError(f"not sample ids (UUIDs): {bad[:3]}")
    return list(dict.fromkeys(ids))


class Collections:
    """The collections file of one data dir (thread-safe; several processes may share it).

    Names are unique regardless of case (``Kicks`` and ``kicks`` are one collection, shown as
    first written).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        # Opened on first use, and again after a failure: a damaged file must not stop the
        # service (search needs none of it), and once it is moved aside the next call works.
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.executescript(_SCHEMA)  # idempotent; executescript commits by itself
            db.execute(
                "INSERT OR IGNORE INTO collections VALUES (?, ?, ?, ?)",
                (FAVOURITES, FAVOURITES, _now(), _now()),
            )
        except BaseException:
            db.close()
            raise
        return db

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> Collections:
        return cls(data_dir / COLLECTIONS_FILE)

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
        if disk_full_cause(exc) is not None:
            return DiskFullError(
                f"disk full: the collections file {self.path} cannot be written ({exc}); "
                "nothing was changed. Free some space and try again."
            )
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF  # the primary code
        if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            # The handle may hold a damaged page cache: open afresh on the next call.
            if self._db is not None:
                self._db.close()
                self._db = None
            return CollectionsUnavailableError(
                f"the collections file {self.path} is damaged ({exc}). Search is unaffected. "
                f"To recover, move it aside (mv {self.path} {self.path}.damaged, with its "
                "-wal and -shm files if any): the next request starts a new, empty one. Or "
                "stop Timbre and restore the file from a backup."
            )
        return CollectionsUnavailableError(f"the collections file {self.path} failed: {exc}")

    def _name_of(self, db: sqlite3.Connection, name: str) -> str | None:
        row = db.execute(
            "SELECT name FROM collections WHERE key = ?", (check_name(name).casefold(),)
        ).fetchone()
        return None if row is None else str(row[0])

    def _existing(self, db: sqlite3.Connection, name: str) -> str:
        stored = self._name_of(db, name)
        if stored is None:
            raise NotFoundError(f"no collection named {name!r}")
        return stored

    def _info(self, db: sqlite3.Connection, name: str) -> CollectionInfo:
        created, updated = db.execute(
            "SELECT created_at, updated_at FROM collections WHERE name = ?", (name,)
        ).fetchone()
        (count,) = db.execute("SELECT COUNT(*) FROM items WHERE collection = ?", (name,)).fetchone()
        return CollectionInfo(name, int(count), str(created), str(updated))

    # -- reading ---------------------------------------------------------------------------

    def list_all(self) -> list[CollectionInfo]:
        """Every collection, favourites first, then by name."""
        with self._tx() as db:
            names = [str(r[0]) for r in db.execute("SELECT name FROM collections ORDER BY key")]
            infos = [self._info(db, n) for n in names]
        return sorted(infos, key=lambda c: (c.name != FAVOURITES, c.name.casefold()))

    def get(self, name: str) -> CollectionInfo:
        """Raises: NotFoundError: no such collection."""
        with self._tx() as db:
            return self._info(db, self._existing(db, name))

    def items(self, name: str) -> list[CollectionItem]:
        """The samples of a collection, oldest first. Raises: NotFoundError."""
        with self._tx() as db:
            stored = self._existing(db, name)
            rows = db.execute(
                "SELECT point_id, added_at, path_hint FROM items WHERE collection = ? ORDER BY seq",
                (stored,),
            ).fetchall()
        return [CollectionItem(str(r[0]), str(r[1]), r[2]) for r in rows]

    def memberships(self, ids: Sequence[str]) -> dict[str, list[str]]:
        """For each of ``ids`` held by some collection, the names of those collections."""
        wanted = _check_ids(ids)
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        with self._tx() as db:
            rows = db.execute(
                f"SELECT point_id, collection FROM items WHERE point_id IN ({marks}) "
                "ORDER BY collection",
                wanted,
            ).fetchall()
        out: dict[str, list[str]] = {}
        for point, collection in rows:
            out.setdefault(str(point), []).append(str(collection))
        return out

    # -- writing ---------------------------------------------------------------------------

    def create(self, name: str) -> CollectionInfo:
        """A new, empty collection. Raises: ConflictError: the name is taken (any case)."""
        text = check_name(name)
        with self._tx() as db:
            if self._name_of(db, text) is not None:
                raise ConflictError(f"a collection named {text!r} already exists")
            db.execute(
                "INSERT INTO collections VALUES (?, ?, ?, ?)",
                (text, text.casefold(), _now(), _now()),
            )
            return self._info(db, text)

    def add(
        self,
        name: str,
        ids: Sequence[str],
        *,
        path_hints: Sequence[str | None] | None = None,
        create: bool = True,
    ) -> CollectionInfo:
        """Add samples (already there: kept where they were), creating the collection if asked.

        Raises:
            NotFoundError: no such collection and ``create`` is False.
            InvalidRequestError: a bad name or id, or too many ids.
        """
        wanted = _check_ids(ids)
        if path_hints is not None and len(path_hints) != len(ids):
            raise InvalidRequestError("give one path hint per id, or none")
        hints = dict(zip(ids, path_hints or [None] * len(ids), strict=True))
        text = check_name(name)
        with self._tx() as db:
            stored = self._name_of(db, text)
            if stored is None:
                if not create:
                    raise NotFoundError(f"no collection named {text!r}")
                db.execute(
                    "INSERT INTO collections VALUES (?, ?, ?, ?)",
                    (text, text.casefold(), _now(), _now()),
                )
                stored = text
            (seq,) = db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM items WHERE collection = ?", (stored,)
            ).fetchone()
            now = _now()
            for offset, point in enumerate(wanted, 1):
                db.execute(
                    "INSERT OR IGNORE INTO items VALUES (?, ?, ?, ?, ?)",
                    (stored, point, hints.get(point), now, int(seq) + offset),
                )
            db.execute("UPDATE collections SET updated_at = ? WHERE name = ?", (now, stored))
            return self._info(db, stored)

    def remove(self, name: str, ids: Sequence[str]) -> CollectionInfo:
        """Remove samples (absent ones are ignored). Raises: NotFoundError."""
        wanted = _check_ids(ids)
        with self._tx() as db:
            stored = self._existing(db, name)
            db.executemany(
                "DELETE FROM items WHERE collection = ? AND point_id = ?",
                [(stored, p) for p in wanted],
            )
            db.execute("UPDATE collections SET updated_at = ? WHERE name = ?", (_now(), stored))
            return self._info(db, stored)

    def delete(self, name: str) -> None:
        """Delete a collection and its items.

        Raises:
            NotFoundError: no such collection.
            ConflictError: it is the favourites, which always exist.
        """
        with self._tx() as db:
            stored = self._existing(db, name)
            if stored == FAVOURITES:
                raise ConflictError("the favourites cannot be deleted (remove their items instead)")
            db.execute("DELETE FROM collections WHERE name = ?", (stored,))

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
