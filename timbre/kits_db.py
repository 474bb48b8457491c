"""Drum kits of 8 or 16 pads, kept with the data dir beside the collections.

One SQLite file (``kits.sqlite``), not in Qdrant, so a kit survives a re-index or a model
change: a pad holds a point id (content-derived, so the same file keeps its id), with a path
hint for a person once the sample is gone. What goes on a pad is decided by
:mod:`timbre.search.kits`; this module only stores it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from timbre.collections_db import check_name
from timbre.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    UnavailableError,
)
from timbre.fsutil import now_iso
from timbre.userdb import UserFile

KITS_FILE = "kits.sqlite"
PAD_COUNTS = (8, 16)
MAX_SWAPPED = 64
"""Ids a pad remembers having swapped away (so swapping again moves on, not back)."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS kits (
    name TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    context TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pads (
    kit TEXT NOT NULL REFERENCES kits(name) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    slot TEXT NOT NULL,
    point_id TEXT,
    path_hint TEXT,
    locked INTEGER NOT NULL DEFAULT 0,
    note TEXT,
    swapped TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (kit, idx)
);
"""


@dataclass(frozen=True)
class Pad:
    """One pad (``index`` from 1): its slot label, the sample on it (None: empty), whether
    fill and swap-all keep it, a note on how it was chosen, and the ids swapped away from it."""

    index: int
    slot: str
    id: str | None = None
    path_hint: str | None = None
    locked: bool = False
    note: str | None = None
    swapped: tuple[str, ...] = ()


@dataclass(frozen=True)
class KitInfo:
    """A kit's name, pad count, filled pads and times (ISO 8601 UTC)."""

    name: str
    size: int
    filled: int
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class KitRecord:
    """A stored kit: its info, project context (``{"bpm", "key", "tolerance_pct"}`` or None)
    and its pads in order."""

    info: KitInfo
    context: dict[str, Any] | None
    pads: list[Pad] = field(default_factory=list)


class KitsUnavailableError(UnavailableError):
    """The kits file cannot be used; the message says what to do."""

    code = "kits_unavailable"


def check_kit_name(name: str, *, new: bool = True) -> str:
    """A kit name, trimmed, if usable: the rules of collection names (names become folders on
    export), else InvalidRequestError saying why."""
    return check_name(name, new=new, what="kit")


def _pad_of(row: Sequence[Any]) -> Pad:
    idx, slot, point, hint, locked, note, swapped = row
    return Pad(
        int(idx), str(slot), point, hint, bool(locked), note, tuple(json.loads(swapped or "[]"))
    )


class Kits(UserFile):
    """The kits file of one data dir (thread-safe; processes may share it). Names are unique
    regardless of case, shown as first written."""

    WHAT = "kits"
    SCHEMA = _SCHEMA
    UNAVAILABLE = KitsUnavailableError

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> Kits:
        return cls(data_dir / KITS_FILE)

    def _name_of(self, db: sqlite3.Connection, name: str) -> str | None:
        row = db.execute(
            "SELECT name FROM kits WHERE key = ?", (check_kit_name(name, new=False).casefold(),)
        ).fetchone()
        return None if row is None else str(row[0])

    def _existing(self, db: sqlite3.Connection, name: str) -> str:
        stored = self._name_of(db, name)
        if stored is None:
            raise NotFoundError(f"no kit named {name!r}")
        return stored

    def _record(self, db: sqlite3.Connection, name: str) -> KitRecord:
        size, context, created, updated = db.execute(
            "SELECT size, context, created_at, updated_at FROM kits WHERE name = ?", (name,)
        ).fetchone()
        pads = [
            _pad_of(r)
            for r in db.execute(
                "SELECT idx, slot, point_id, path_hint, locked, note, swapped FROM pads "
                "WHERE kit = ? ORDER BY idx",
                (name,),
            )
        ]
        filled = sum(p.id is not None for p in pads)
        info = KitInfo(name, int(size), filled, str(created), str(updated))
        return KitRecord(info, json.loads(context) if context else None, pads)

    def list_all(self) -> list[KitInfo]:
        """Every kit, by name."""
        with self._tx() as db:
            names = [str(r[0]) for r in db.execute("SELECT name FROM kits ORDER BY key")]
            return [self._record(db, n).info for n in names]

    def get(self, name: str) -> KitRecord:
        with self._tx() as db:
            return self._record(db, self._existing(db, name))

    def create(
        self, name: str, size: int, context: dict[str, Any] | None, pads: Sequence[Pad]
    ) -> KitRecord:
        """A new kit with its pads (ConflictError: the name is taken, in any case)."""
        text = check_kit_name(name)
        if size not in PAD_COUNTS or len(pads) != size:
            raise InvalidRequestError(f"a kit has 8 or 16 pads, not {size}")
        with self._tx() as db:
            if self._name_of(db, text) is not None:
                raise ConflictError(f"a kit named {text!r} already exists")
            now = now_iso()
            db.execute(
                "INSERT INTO kits VALUES (?, ?, ?, ?, ?, ?)",
                (text, text.casefold(), size, json.dumps(context) if context else None, now, now),
            )
            self._write_pads(db, text, pads)
            return self._record(db, text)

    def save_pads(self, name: str, pads: Sequence[Pad]) -> KitRecord:
        """Replace the given pads (by index) of a kit."""
        with self._tx() as db:
            stored = self._existing(db, name)
            (size,) = db.execute("SELECT size FROM kits WHERE name = ?", (stored,)).fetchone()
            for pad in pads:
                if not 1 <= pad.index <= int(size):
                    raise NotFoundError(f"kit {stored!r} has pads 1 to {size}, not {pad.index}")
            self._write_pads(db, stored, pads)
            db.execute("UPDATE kits SET updated_at = ? WHERE name = ?", (now_iso(), stored))
            return self._record(db, stored)

    def set_context(self, name: str, context: dict[str, Any] | None) -> KitRecord:
        """Give a kit another project context (None: none); its pads stay as they are."""
        with self._tx() as db:
            stored = self._existing(db, name)
            db.execute(
                "UPDATE kits SET context = ?, updated_at = ? WHERE name = ?",
                (json.dumps(context) if context else None, now_iso(), stored),
            )
            return self._record(db, stored)

    @staticmethod
    def _write_pads(db: sqlite3.Connection, kit: str, pads: Sequence[Pad]) -> None:
        db.executemany(
            "INSERT OR REPLACE INTO pads VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    kit,
                    p.index,
                    p.slot,
                    p.id,
                    p.path_hint,
                    int(p.locked),
                    p.note,
                    json.dumps(list(p.swapped[-MAX_SWAPPED:])),
                )
                for p in pads
            ],
        )

    def delete(self, name: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM kits WHERE name = ?", (self._existing(db, name),))
