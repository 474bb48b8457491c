"""Favourites and named collections of samples, kept with the data dir and shared by every door.

One SQLite file beside the store, not in Qdrant, so the user's data survives a re-index or a
model change; items are point ids (content-derived), with a path hint for a person.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from timbre.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    UnavailableError,
)
from timbre.fsutil import now_iso
from timbre.userdb import UserFile

FAVOURITES = "favourites"  # the built-in collection a star adds to
COLLECTIONS_FILE = "collections.sqlite"

MAX_NAME_CHARS = 64
MAX_ITEMS_PER_CALL = 500
"""Most ids one add/remove call takes: a page of results, not a whole library."""

_NAME = re.compile(r"[^\x00-\x1f\x7f/\\\ud800-\udfff]+")  # lone surrogates: not text
_HIDDEN_RANGES = (
    (0x00, 0x1F), (0x7F, 0x9F), (0xAD, 0xAD), (0x600, 0x605), (0x61C, 0x61C), (0x6DD, 0x6DD),
    (0x70F, 0x70F), (0x890, 0x891), (0x8E2, 0x8E2), (0x180E, 0x180E), (0x200B, 0x200F),
    (0x2028, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F), (0xE000, 0xF8FF), (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB), (0xFFFD, 0xFFFD), (0x110BD, 0x110BD), (0x110CD, 0x110CD),
    (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001),
    (0xE0020, 0xE007F), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD),
)  # fmt: skip
"""Code points no new name may hold: Unicode 14's Cc, Cf (bidi controls, zero widths, BOM),
Co, Zl, Zp, and U+FFFD; spelled out so every Python, and the API's schema, agree."""


def _escape(code: int) -> str:
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


HIDDEN_CLASS = "".join(f"{_escape(a)}-{_escape(b)}" for a, b in _HIDDEN_RANGES)
""":data:`_HIDDEN_RANGES` as the body of a regex character class (``[...]``)."""
HIDDEN = re.compile(f"[{HIDDEN_CLASS}\\ud800-\\udfff]")
"""Any hidden code point, or a lone surrogate (a name that was not text)."""
DEVICE_NAME = re.compile(r"(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?", re.IGNORECASE)
"""Windows device names, which Windows reserves with any extension (``nul.txt``)."""
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
    """The collections file cannot be used; the message says what to do."""

    code = "collections_unavailable"


def check_name(name: str, *, new: bool = True, what: str = "collection") -> str:
    """A collection's (or a kit's: ``what``) name, trimmed, if usable (else InvalidRequestError
    saying why): 1 to 64 characters, no control character or slash (names become folders on
    export). A ``new`` one must also read as it looks (:func:`name_problem`); lookups skip
    that, for older names."""
    text = name.strip()
    if not text or len(text) > MAX_NAME_CHARS or not _NAME.fullmatch(text):
        raise InvalidRequestError(
            f"a {what} name needs 1 to {MAX_NAME_CHARS} characters, without control "
            f"characters or slashes (got {name!r})"
        )
    if new:
        why = name_problem(text)
        if why is not None:
            raise InvalidRequestError(f"{what} name {text!r}: {why}")
    return text


def name_problem(text: str) -> str | None:
    """Why ``text`` cannot be a file or folder name shown as it is (None: it can): invisible or
    direction-changing characters (``kicks\u202egpj.exe`` reads ``kicksexe.jpg``), U+FFFD, or
    a Windows device name."""
    hidden = HIDDEN.search(text)
    if hidden is not None:
        char = hidden.group(0)
        if char == "\ufffd":
            return (
                "it holds U+FFFD, the replacement character left where bytes were not UTF-8 "
                "(percent-encode the name as UTF-8)"
            )
        label = unicodedata.name(char, "a control or private-use character")
        return (
            f"it holds U+{ord(char):04X} ({label}), an invisible, direction-changing or "
            "control character"
        )
    if DEVICE_NAME.fullmatch(text):
        return (
            "it is a Windows device name (CON, PRN, AUX, NUL, COM0-9, LPT0-9, with or without "
            "an extension), which Windows cannot create as a folder"
        )
    return None


def _insert(db: sqlite3.Connection, name: str, verb: str = "INSERT") -> str:
    db.execute(
        f"{verb} INTO collections VALUES (?, ?, ?, ?)",
        (name, name.casefold(), now_iso(), now_iso()),
    )
    return name


def _check_ids(ids: Sequence[str]) -> list[str]:
    if len(ids) > MAX_ITEMS_PER_CALL:
        raise InvalidRequestError(f"at most {MAX_ITEMS_PER_CALL} ids per call")
    bad = [i for i in ids if not isinstance(i, str) or not _UUID.fullmatch(i)]
    if bad:
        raise InvalidRequestError(f"not sample ids (UUIDs): {bad[:3]}")
    return list(dict.fromkeys(ids))


class Collections(UserFile):
    """The collections file of one data dir (thread-safe; processes may share it). Names are
    unique regardless of case, shown as first written."""

    WHAT = "collections"
    SCHEMA = _SCHEMA
    UNAVAILABLE = CollectionsUnavailableError

    def _prepare(self, db: sqlite3.Connection) -> None:
        _insert(db, FAVOURITES, "INSERT OR IGNORE")

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> Collections:
        return cls(data_dir / COLLECTIONS_FILE)

    def _name_of(self, db: sqlite3.Connection, name: str) -> str | None:
        row = db.execute(
            "SELECT name FROM collections WHERE key = ?", (check_name(name, new=False).casefold(),)
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

    def list_all(self) -> list[CollectionInfo]:
        """Every collection, favourites first, then by name."""
        with self._tx() as db:
            names = [str(r[0]) for r in db.execute("SELECT name FROM collections ORDER BY key")]
            infos = [self._info(db, n) for n in names]
        return sorted(infos, key=lambda c: (c.name != FAVOURITES, c.name.casefold()))

    def get(self, name: str) -> CollectionInfo:
        with self._tx() as db:
            return self._info(db, self._existing(db, name))

    def items(self, name: str) -> list[CollectionItem]:
        """The samples of a collection, oldest first."""
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

    def create(self, name: str) -> CollectionInfo:
        """A new, empty collection (ConflictError: the name is taken, in any case)."""
        text = check_name(name)
        with self._tx() as db:
            if self._name_of(db, text) is not None:
                raise ConflictError(f"a collection named {text!r} already exists")
            _insert(db, text)
            return self._info(db, text)

    def add(
        self,
        name: str,
        ids: Sequence[str],
        *,
        path_hints: Sequence[str | None] | None = None,
        create: bool = True,
    ) -> CollectionInfo:
        """Add samples (ones already there stay where they were), creating the collection
        if missing and ``create``."""
        wanted = _check_ids(ids)
        if path_hints is not None and len(path_hints) != len(ids):
            raise InvalidRequestError("give one path hint per id, or none")
        hints = dict(zip(ids, path_hints or [None] * len(ids), strict=True))
        text = check_name(name, new=False)
        with self._tx() as db:
            stored = self._name_of(db, text)
            if stored is None:
                if not create:
                    raise NotFoundError(f"no collection named {text!r}")
                stored = _insert(db, check_name(text))  # a new collection: every rule applies
            (seq,) = db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM items WHERE collection = ?", (stored,)
            ).fetchone()
            now = now_iso()
            for offset, point in enumerate(wanted, 1):
                db.execute(
                    "INSERT OR IGNORE INTO items VALUES (?, ?, ?, ?, ?)",
                    (stored, point, hints.get(point), now, int(seq) + offset),
                )
            db.execute("UPDATE collections SET updated_at = ? WHERE name = ?", (now, stored))
            return self._info(db, stored)

    def remove(self, name: str, ids: Sequence[str]) -> CollectionInfo:
        """Remove samples (absent ones are ignored)."""
        wanted = _check_ids(ids)
        with self._tx() as db:
            stored = self._existing(db, name)
            db.executemany(
                "DELETE FROM items WHERE collection = ? AND point_id = ?",
                [(stored, p) for p in wanted],
            )
            db.execute("UPDATE collections SET updated_at = ? WHERE name = ?", (now_iso(), stored))
            return self._info(db, stored)

    def delete(self, name: str) -> None:
        """Delete a collection and its items (never the favourites: ConflictError)."""
        with self._tx() as db:
            stored = self._existing(db, name)
            if stored == FAVOURITES:
                raise ConflictError("the favourites cannot be deleted (remove their items instead)")
            db.execute("DELETE FROM collections WHERE name = ?", (stored,))
