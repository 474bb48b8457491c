"""What a process holds of one indexed library: its models, the live store, the snapshot in use,
its limits and roots. The composition root builds one :class:`Library`; the search service and
every service beside it read it, and so do readiness and stats.

The heavy parts are built cheaply and loaded on demand (or in the background), so a service
answers ``/healthz`` at once and reports in ``/readyz`` what is still loading or unreachable.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import numpy as np

from timbre.diskspace import DiskReserve, megabytes
from timbre.embedding.info import ModelInfo
from timbre.errors import (
    InvalidRequestError,
    ModelMismatchError,
    NotFoundError,
    StoreError,
    UnavailableError,
)
from timbre.fit import DEFAULT_TEMPO_TOLERANCE_PCT
from timbre.library_roots import LibraryRoots
from timbre.search.duplicates import DuplicateRules
from timbre.search.holders import Lazy, SnapshotHolder, StoreHandle
from timbre.search.served import ServedFiles
from timbre.store import Collection, SearchFilter
from timbre.store.facets import FACET_FIELDS
from timbre.store.snapshot import Snapshot, export_snapshot, freshness

T = TypeVar("T")


@dataclass(frozen=True)
class ServiceLimits:
    """Limits on inputs, from the ``api``, ``audio``, ``snapshot``, ``facets``, ``fit``
    settings."""

    library_roots: tuple[Path, ...]
    max_upload_bytes: int
    max_upload_duration_s: float
    max_duration_s: float
    max_file_bytes: int
    text_cache_size: int
    snapshot_keep: int
    facet_default_limit: int
    facet_max_limit: int
    duplicate_rules: DuplicateRules
    text_batch_max: int = 1  # concurrent uncached text queries per text-tower call
    tempo_tolerance_pct: float = DEFAULT_TEMPO_TOLERANCE_PCT  # a project context's default
    roots_problem: str | None = None  # what went wrong reading the data dir's roots file


def check_id(item_id: str) -> None:
    """Refuse an item id that is no UUID (no item can have it) as not found."""
    try:
        uuid.UUID(item_id)
    except ValueError:
        raise NotFoundError(f"no indexed item {item_id!r} (ids are UUIDs)") from None


@dataclass(kw_only=True, eq=False)
class Library:
    """The resources of one indexed library, shared by search and every service beside it:
    the loaded models' ``info`` (vectors and snapshots must match it), the ``text`` model
    (loaded at start) and ``audio`` one (on first need), the live ``store``, the
    ``snapshots`` in use, input ``limits`` and roots, and the data dir's ``disk`` reserve
    that readiness reports (None: not reported)."""

    info: ModelInfo
    text: Lazy[Any]
    audio: Lazy[Any]
    store: StoreHandle
    snapshots: SnapshotHolder
    limits: ServiceLimits
    disk: DiskReserve | None = None
    roots: LibraryRoots = field(init=False)
    files: ServedFiles = field(init=False)

    def __post_init__(self) -> None:
        # The one roots check of every route that reads a file (fails closed: no roots, no file).
        self.roots = LibraryRoots(self.limits.library_roots, problem=self.limits.roots_problem)
        self.files = ServedFiles(self.roots, self.limits.max_file_bytes)

    # -- items: the snapshot first, then Qdrant ---------------------------------------------

    def item(self, item_id: str) -> dict[str, Any]:
        check_id(item_id)
        snapshot = self.snapshots.current
        payload = snapshot.payload(item_id) if snapshot is not None else None
        if payload is None:
            try:
                records = self.store.get().live().retrieve([item_id])
            except UnavailableError:
                records = []
            if not records:
                raise NotFoundError(f"no indexed item {item_id}")
            payload = records[0].payload
        return payload

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Display payloads of the indexed ones among ``ids`` (ids that are no UUID left out)."""
        return self._snapshot_first(
            ids,
            lambda snapshot, item_id: snapshot.payload(item_id),
            lambda live, rest: {r.id: r.payload for r in live.retrieve(rest)},
        )

    def stored_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors of the indexed ones among ``ids`` (a sample whose file is gone keeps
        its vector until the index drops it)."""
        return self._snapshot_first(
            ids,
            lambda snapshot, item_id: snapshot.vector(item_id),
            lambda live, rest: {
                r.id: r.vector
                for r in live.retrieve(rest, with_vectors=True)
                if r.vector is not None
            },
        )

    def _snapshot_first(
        self,
        ids: Sequence[str],
        from_snapshot: Callable[[Snapshot, str], T | None],
        from_store: Callable[[Collection, list[str]], dict[str, T]],
    ) -> dict[str, T]:
        """What the snapshot holds of ``ids`` (no UUID: left out), then the rest from Qdrant in
        one request; with Qdrant unreachable, what the snapshot had (none: the error)."""
        out: dict[str, T] = {}
        snapshot = self.snapshots.current
        rest = []
        for item_id in ids:
            if not is_uuid(item_id):
                continue
            found = from_snapshot(snapshot, item_id) if snapshot is not None else None
            if found is None:
                rest.append(item_id)
            else:
                out[item_id] = found
        if rest:
            try:
                out.update(from_store(self.store.get().live(), rest))
            except UnavailableError:
                if snapshot is None:
                    raise
        return out

    def stored_vector(self, item_id: str) -> np.ndarray | None:
        check_id(item_id)
        snapshot = self.snapshots.current
        if snapshot is not None:
            vector = snapshot.vector(item_id)
            if vector is not None:
                return vector
        try:
            return self.store.get().live().vector(item_id)
        except UnavailableError:
            if snapshot is None:
                raise
            return None

    def open_item_file(self, item_id: str) -> tuple[Path, BinaryIO]:
        """The item's file, inside the library roots and still holding the indexed content,
        opened: send these checked bytes, then close the handle."""
        return self.files.open_of(item_id, self.item(item_id))

    def item_file(self, item_id: str) -> Path:
        """:meth:`open_item_file`'s path, for a caller that reads it later."""
        path, handle = self.open_item_file(item_id)
        handle.close()
        return path

    def allowed_path(self, path: str) -> Path:
        """Resolve ``path`` (``..``, symlinks) and accept a file only inside the library roots."""
        real = self.allowed_folder(path)
        if not real.is_file():
            raise NotFoundError(f"{path!r} is not a file")
        return real

    def allowed_folder(self, path: str) -> Path:
        """A library folder (or file) inside the roots, for ingest requests."""
        if "\x00" in path:  # no file name can hold one; the OS calls would raise ValueError
            raise InvalidRequestError(f"path {path!r} contains a NUL byte")
        return self.roots.check(path)

    # -- counts -----------------------------------------------------------------------------

    def matching(self, filter: SearchFilter | None) -> int | None:
        """How many indexed samples pass ``filter`` (all without one); None if nobody can say."""
        snapshot = self.snapshots.current
        if (filter is None or filter.is_empty) and snapshot is not None:
            return len(snapshot)
        try:
            return self.store.get().live().count(filter)
        except (UnavailableError, StoreError):
            return None

    def facets(
        self,
        fields: Sequence[str] = (),
        *,
        filter: SearchFilter | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """``{"facets": {field: [{"value", "count"}]}, "total": n}``: the most frequent values
        of ``fields`` (every facet field if empty) under ``filter``, from Qdrant's payload
        indexes; ``limit`` values per field (the configured default if None)."""
        wanted = list(dict.fromkeys(fields)) or list(FACET_FIELDS)
        unknown = [f for f in wanted if f not in FACET_FIELDS]
        if unknown:
            raise InvalidRequestError(
                f"field: cannot facet on {', '.join(map(repr, unknown))}; "
                f"choose from {', '.join(FACET_FIELDS)}"
            )
        count = self.limits.facet_default_limit if limit is None else limit
        if not 1 <= count <= self.limits.facet_max_limit:
            raise InvalidRequestError(f"limit: between 1 and {self.limits.facet_max_limit} values")
        store = self.store.get().live()
        try:
            facets = store.facets(wanted, filter=filter, limit=count)
            total = store.count(filter)
        except StoreError as exc:
            raise UnavailableError(f"facet counts need Qdrant, which failed: {exc}") from exc
        return {
            "facets": {
                f: [{"value": v.value, "count": v.count} for v in values]
                for f, values in facets.items()
            },
            "total": total,
        }

    def export_snapshot(self) -> dict[str, Any]:
        """Export the live collection into a new snapshot, publish it and serve it now."""
        store = self.store.get()
        manifest = export_snapshot(
            store.live(),
            self.snapshots.directory,
            source_mode=store.mode,
            keep=self.limits.snapshot_keep,
        )
        self.snapshots.refresh()
        return {"name": manifest.name, "count": manifest.count, "created_at": manifest.created_at}

    # -- what it says about itself ----------------------------------------------------------

    def readiness(self) -> dict[str, Any]:
        """``/readyz``: ready once the text model, the store and a snapshot are. No library
        roots is a search-only service (still ready); an unreadable roots file is not ready."""
        snapshot, roots, store = self.snapshots.current, self.roots, self.store
        checks = {
            "text_model": self.text.ready,
            "store": store.connected and store.damage is None,
            "snapshot": snapshot is not None,
            "roots_file": roots.problem is None,
        }
        reasons = []
        if not self.text.ready:
            error = self.text.error
            reasons.append(f"text model {'failed: ' + error if error else 'loading'}")
        if not store.connected:
            reasons.append(f"store unreachable: {store.error}" if store.error else "store not open")
        elif store.damage is not None:
            reasons.append(f"store damaged: {store.damage}")
        if snapshot is None:
            reasons.append(self.snapshots.error or "no snapshot published yet (run an ingest)")
        if roots.problem is not None:
            reasons.append(
                f"library roots: {roots.problem}; fix or remove it (`timbre ingest` "
                "records the roots again)"
            )
        ready = all(checks.values())
        checks["library_roots"] = bool(roots.paths)
        if not roots.paths:
            reasons.append(f"{roots.why_none()}: no file is served from disk")
        out: dict[str, Any] = {"ready": ready, "checks": checks, "reasons": reasons}
        if self.disk is not None:
            # Low disk leaves the service ready: searches only read; writes are what it refuses.
            disk = self.disk.status()
            out["disk"] = disk
            out["warnings"] = (
                [
                    f"disk space low: {megabytes(disk['free_bytes'])} free on {disk['path']}, "
                    f"below the {megabytes(disk['min_free_bytes'])} reserve (disk.min_free_bytes): "
                    "ingest jobs and store writes are refused until space is freed"
                ]
                if disk["low"]
                else []
            )
        return out

    def stats(self) -> dict[str, Any]:
        """``/v1/stats``: models, the snapshot in use and its lag behind the live collection."""
        snapshot, audio = self.snapshots.current, self.audio
        loaded = {"text": self.text.peek(), "audio": audio.peek()}  # None: not loaded yet
        out: dict[str, Any] = {
            "family": self.info.family,
            "family_title": self.info.title,
            "models": self.info.as_dict(),
            "pipeline_version": self.info.pipeline_version,
            "random_weights": self.info.random_weights,
            "audio_model_loaded": audio.ready,
            "audio_model": {"state": audio.state, "load_s": audio.load_s, "error": audio.error},
            "runtime": {k: getattr(m, "runtime", None) for k, m in loaded.items()},
            "snapshot": None,
            "store": None,
        }
        if snapshot is not None:
            out["snapshot"] = {
                "name": snapshot.name,
                "count": len(snapshot),
                "created_at": snapshot.manifest.created_at,
                "age_s": _age_s(snapshot.manifest.created_at),
                "mmapped": snapshot.mmapped,
                "scan": snapshot.scan.kind,
            }
        try:
            store = self.store.get()
            live = store.live()
            out["store"] = {"mode": store.mode, "collection": live.name, "count": live.count()}
            if self.store.damage is not None:
                out["store"]["error"] = self.store.damage
            if snapshot is not None:
                out["snapshot"]["freshness"] = freshness(snapshot.manifest, live).as_dict()
        except (UnavailableError, StoreError, ModelMismatchError) as exc:
            out["store"] = {"error": str(exc)}  # the rest of the figures still hold
        return out


def is_uuid(text: str) -> bool:
    """Whether ``text`` is a point id as the store spells them (a lowercase canonical UUID)."""
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def _age_s(iso: str) -> float | None:
    try:
        created = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return round((datetime.now(UTC) - created).total_seconds(), 1)
