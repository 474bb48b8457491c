"""Favourites and named collections as the page, the HTTP API and the MCP server use them.

:class:`timbre.collections_db.Collections` stores names and point ids; this service resolves
them to payloads (an item no longer indexed is reported as missing, never dropped) and exports
a collection as a zip of its original files, streamed while it is written, for a DAW; or, for a
project, of each sample's rendition at the project's tempo and key where it needs one.
"""

from __future__ import annotations

import os
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from timbre.collections_db import (
    DEVICE_NAME,
    HIDDEN,
    CollectionInfo,
    Collections,
)
from timbre.errors import (
    ConflictError,
    ContentChangedError,
    ForbiddenPathError,
    InvalidRequestError,
    NotFoundError,
    TimbreError,
)
from timbre.fit import ProjectContext, fit_of
from timbre.search.library import Library, is_uuid

_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_COPY_CHUNK_BYTES = 1 << 20
MISSING_NOTE = "MISSING.txt"
"""Written into an export that could not include every item, listing the ones left out."""


@dataclass(frozen=True)
class ResolvedItem:
    """One item of a collection: when it joined (ISO 8601 UTC), its path then (for a person,
    once it is no longer indexed) and its display payload (None: no longer indexed)."""

    id: str
    added_at: str
    path_hint: str | None
    payload: dict[str, Any] | None

    @property
    def missing(self) -> bool:
        return self.payload is None


@dataclass(frozen=True)
class CollectionView:
    """A collection and its items in the order they were added."""

    info: CollectionInfo
    items: list[ResolvedItem]


class Opened(Protocol):
    """An opened rendition: read ``handle``, then :meth:`close`."""

    @property
    def handle(self) -> BinaryIO: ...

    def close(self) -> None: ...


MatchedSource = Callable[[str, float | None, int], Opened]
"""The rendition of an item at a tempo (None: its own) and a transposition in semitones."""


def match_for(context: ProjectContext, payload: dict[str, Any]) -> tuple[float | None, int] | None:
    """The (bpm, semitones) that put a sample on the project's tempo and key, or None when it
    already sits there or has neither to match (a one-shot drum)."""
    fit = fit_of(context, payload)
    bpm = context.bpm if fit.stretch_pct else None
    if bpm is None and not fit.semitones:
        return None
    return bpm, fit.semitones or 0


MAX_NAME_BYTES = 255
"""The longest file name (in UTF-8 bytes) common file systems take; longer ones fail to unzip."""


def matched_name(name: str, match: tuple[float | None, int]) -> str:
    """``Bass_Loop (124 BPM, -2 st).wav``: the page's name for a matched rendition (the stem
    shortened when the whole would pass :data:`MAX_NAME_BYTES`)."""
    bpm, semitones = match
    parts = [f"{bpm:g} BPM" if bpm is not None else "", f"{semitones:+d} st" if semitones else ""]
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    suffix = f" ({', '.join(p for p in parts if p)}).wav"
    room = MAX_NAME_BYTES - len(suffix.encode()) - len(b" (99)")  # and a clash's number
    while len(stem.encode()) > room:
        stem = stem[:-1]
    return f"{stem}{suffix}"


def zip_time(mtime: float) -> tuple[int, int, int, int, int, int]:
    """A file's modification time as a zip entry's: zip counts from 1980 (an older time, as a
    Nix store's 1 s, would end the stream), and to 2107."""
    stamp = datetime.fromtimestamp(mtime, UTC).timetuple()[:6]
    return max((1980, 1, 1, 0, 0, 0), min(stamp, (2107, 12, 31, 23, 59, 58)))


@dataclass(frozen=True)
class ExportEntry:
    """One file of an export: where it comes from, its name inside the export folder, and
    the rendition to take instead of the file (``match``: bpm, semitones), if any, with the
    name the original goes in under when that rendition cannot be made (``fallback``)."""

    id: str
    source: Path
    name: str
    sha256: str
    match: tuple[float | None, int] | None = None
    fallback: str | None = None


@dataclass(frozen=True)
class ExportPlan:
    """What an export holds: a folder name, its files, and the items that could not go in."""

    folder: str
    entries: list[ExportEntry]
    missing: list[tuple[str, str]]  # (id, why); export_zip adds the ones that changed meanwhile
    unmatched: list[tuple[str, str]] = field(default_factory=list)  # (name, why): originals

    def note(self) -> str | None:
        lines = []
        if self.missing:
            lines += [f"{len(self.missing)} item(s) of this collection are not in this export:", ""]
            lines += [f"{item_id}: {why}" for item_id, why in self.missing]
        if self.unmatched:
            lines += ["", "Went in as the original, not matched to the project:", ""]
            lines += [f"{name}: {why}" for name, why in self.unmatched]
        return "\n".join(lines).lstrip("\n") + "\n" if lines else None


def safe_name(text: str, fallback: str = "untitled") -> str:
    """A file or folder name every desktop file system takes and every reader sees as it is:
    unsafe characters become ``_``, hidden ones are dropped, ``CON.wav`` becomes ``_CON.wav``."""
    visible = HIDDEN.sub("", unicodedata.normalize("NFC", text))
    name = _UNSAFE.sub("_", visible).strip().rstrip(".")
    if DEVICE_NAME.fullmatch(name):
        name = f"_{name}"
    return name or fallback


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``stem (2).ext`` and so on when taken (compared ignoring case, as macOS and
    Windows do)."""
    stem, dot, ext = name.rpartition(".") if "." in name.lstrip(".") else (name, "", "")
    candidate, n = name, 1
    while candidate.casefold() in taken:
        n += 1
        candidate = f"{stem} ({n}){dot}{ext}"
    taken.add(candidate.casefold())
    return candidate


class _Sink:
    """A write-only stream whose bytes are taken out in chunks as a zip is written into it."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._written = 0

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


class CollectionsService:
    """Collections of indexed samples: ``db`` holds them (list, create and delete there),
    ``library`` resolves their ids."""

    def __init__(
        self, db: Collections, library: Library, matched: MatchedSource | None = None
    ) -> None:
        self.db = db
        self.library = library
        self.matched = matched

    def get(self, name: str) -> CollectionView:
        """A collection with its items resolved. Raises: NotFoundError."""
        info = self.db.get(name)
        items = self.db.items(info.name)
        payloads = self.library.payloads([i.id for i in items])
        return CollectionView(
            info,
            [ResolvedItem(i.id, i.added_at, i.path_hint, payloads.get(i.id)) for i in items],
        )

    def memberships(self, ids: Sequence[str]) -> dict[str, list[str]]:
        """For each of ``ids`` in some collection, the names of those collections (an id that
        is no sample id is in none)."""
        return self.db.memberships([i for i in ids if is_uuid(i)])

    def add(self, name: str, ids: Sequence[str]) -> CollectionView:
        """Add indexed samples, creating the collection if missing (NotFoundError, and nothing
        added, when some id is not indexed)."""
        if not ids:
            raise InvalidRequestError("ids: give at least one sample id")
        payloads = self.library.payloads(list(dict.fromkeys(ids)))
        unknown = [i for i in ids if i not in payloads]
        if unknown:
            raise NotFoundError(f"not indexed: {', '.join(unknown[:5])}")
        info = self.db.add(name, ids, path_hints=[payloads[i].get("path") for i in ids])
        return self.get(info.name)

    def remove(self, name: str, ids: Sequence[str]) -> CollectionView:
        """Remove samples (ones not in it, or no sample ids at all, are ignored)."""
        info = self.db.remove(name, [i for i in ids if is_uuid(i)])
        return self.get(info.name)

    def plan_export(self, name: str, project: ProjectContext | None = None) -> ExportPlan:
        """The files an export of ``name`` holds, under their original names (clashes get
        ``name (2).wav``), and the items left out with the reason. With a ``project``, a
        sample off its tempo or key goes in as its matched rendition, a WAV named as the page
        names it (``Loop (124 BPM, -2 st).wav``); ConflictError where none are made."""
        if project is not None and self.matched is None:
            raise ConflictError("matched: this service makes no matched renditions")
        view = self.get(name)
        taken: set[str] = {MISSING_NOTE.casefold()}
        entries, missing = [], []
        for item in view.items:
            if item.payload is None:
                missing.append((item.id, f"no longer indexed (was {item.path_hint or '?'})"))
                continue
            try:
                source = self.library.item_file(item.id)  # in the roots, content as indexed
            except (NotFoundError, ForbiddenPathError, ContentChangedError) as exc:
                missing.append((item.id, str(exc)))
                continue
            sha = str(item.payload.get("content_sha256") or "")
            match = None if project is None else match_for(project, item.payload)
            wanted = source.name if match is None else matched_name(source.name, match)
            name = _unique(safe_name(wanted), taken)
            fallback = None if match is None else _unique(safe_name(source.name), taken)
            entries.append(ExportEntry(item.id, source, name, sha, match, fallback))
        return ExportPlan(safe_name(view.info.name), entries, missing)

    def export_zip(self, plan: ExportPlan) -> Iterator[bytes]:
        """The zip of a plan, in chunks as it is written: one folder named after the collection.
        Stored, not deflated: audio barely compresses."""
        sink = _Sink()
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for entry in plan.entries:
                opened = self._open_checked(entry, plan)
                if opened is None:
                    continue  # changed since the plan was made: listed in the note instead
                handle, close, name = opened
                try:
                    stat = os.fstat(handle.fileno())
                    info = zipfile.ZipInfo(
                        f"{plan.folder}/{name}", date_time=zip_time(stat.st_mtime)
                    )
                    info.file_size = stat.st_size
                    with zf.open(info, "w") as out:
                        while chunk := handle.read(_COPY_CHUNK_BYTES):
                            out.write(chunk)
                            yield sink.take()
                finally:
                    close()
                yield sink.take()
            note = plan.note()
            if note is not None:
                zf.writestr(f"{plan.folder}/{MISSING_NOTE}", note)
        yield sink.take()

    def _open_checked(
        self, entry: ExportEntry, plan: ExportPlan
    ) -> tuple[BinaryIO, Callable[[], None], str] | None:
        """The entry's matched rendition, or its file if it still holds the indexed content
        (checked on the handle that is then copied), open, with what closes it and its name
        in the export; otherwise None, with the reason added to the plan's missing. A
        rendition that cannot be made falls back to the original, as the page's audition
        does (the note says so)."""
        if entry.match is not None:
            assert self.matched is not None  # plan_export refused a project without it
            try:
                rendition = self.matched(entry.id, *entry.match)
                return rendition.handle, rendition.close, entry.name
            except (OSError, TimbreError) as exc:
                why = exc.strerror if isinstance(exc, OSError) else str(exc)
                name = entry.fallback or entry.source.name
                plan.unmatched.append((name, f"no matched rendition ({why})"))
                entry = replace(entry, name=name, match=None)
        opened = self._open_original(entry, plan)
        return None if opened is None else (*opened, entry.name)

    def _open_original(
        self, entry: ExportEntry, plan: ExportPlan
    ) -> tuple[BinaryIO, Callable[[], None]] | None:
        try:
            handle = self.library.files.open_checked(entry.source, entry.sha256)
        except ContentChangedError as exc:
            plan.missing.append((entry.id, str(exc)))
            return None
        except OSError as exc:
            plan.missing.append((entry.id, f"{entry.source} cannot be read ({exc.strerror})"))
            return None
        return handle, handle.close
