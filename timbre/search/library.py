"""What a process holds of one indexed library: its models, the live store, the snapshot in use,
its limits and roots. The composition root builds one :class:`Library`; the search service and
every service beside it read it, and so do readiness and stats.

The heavy parts are built cheaply and loaded on demand (or in the background), so a service
answers ``/healthz`` at once and reports in ``/readyz`` what is still loading or unreachable.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Generic, TypeVar

import numpy as np

from timbre.diskspace import DiskReserve, megabytes
from timbre.embedding.info import ModelInfo
from timbre.errors import (
    InvalidRequestError,
    ModelMismatchError,
    NotFoundError,
    SnapshotError,
    StoreError,
    TimbreError,
    UnavailableError,
)
from timbre.fit import DEFAULT_TEMPO_TOLERANCE_PCT
from timbre.library_roots import LibraryRoots
from timbre.search.duplicates import DuplicateRules
from timbre.search.served import ServedFiles
from timbre.store import SearchFilter, VectorStore
from timbre.store.facets import FACET_FIELDS
from timbre.store.snapshot import (
    ScanOptions,
    Snapshot,
    current_snapshot_name,
    export_snapshot,
    freshness,
    load_snapshot,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


class Lazy(Generic[T]):
    """A heavy object loaded once, on first use or in the background, behind a lock. A failed
    load is remembered and reported; the next :meth:`get` tries again."""

    def __init__(self, name: str, loader: Callable[[], T]) -> None:
        self.name = name
        self._loader = loader
        self._value: T | None = None
        self._lock = threading.Lock()
        self.error: str | None = None
        self.load_s: float | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self._value is not None

    def peek(self) -> T | None:
        """The loaded object, or None (never starts a load)."""
        return self._value

    def get(self) -> T:
        if self._value is not None:
            return self._value
        with self._lock:
            if self._value is None:
                started = time.perf_counter()
                try:
                    self._value = self._loader()
                except TimbreError as exc:
                    self.error = str(exc)
                    raise UnavailableError(f"{self.name} could not be loaded: {exc}") from exc
                self.error = None
                self.load_s = time.perf_counter() - started
                log.info("%s loaded in %.1f s", self.name, self.load_s)
        return self._value

    def start(self) -> threading.Thread:
        """Load in a background thread (errors kept in :attr:`error`); one already loading is
        returned rather than a second started."""
        with self._start_lock:
            if self._thread is not None and self._thread.is_alive():
                return self._thread

            def run() -> None:
                try:
                    self.get()
                except UnavailableError as exc:
                    log.error("%s", exc)

            self._thread = threading.Thread(target=run, name=f"load-{self.name}", daemon=True)
            self._thread.start()
            return self._thread

    @property
    def state(self) -> str:
        """``ready``, ``loading``, ``failed`` (the last attempt) or ``not_loaded``."""
        if self._value is not None:
            return "ready"
        if self._lock.locked() or (self._thread is not None and self._thread.is_alive()):
            return "loading"
        return "failed" if self.error is not None else "not_loaded"


@dataclass(eq=False)
class SnapshotHolder:
    """The FAISS snapshot in use, swapped when a new one is published; one built by other
    models, or corrupt, is refused and the one in use stays. ``scan`` says when loaded
    snapshots use the quantised first pass (None: never)."""

    directory: Path
    info: ModelInfo
    _: KW_ONLY
    mmap_min_bytes: int
    verify_checksums: bool
    reverify_unchanged: bool = False
    scan: ScanOptions | None = None
    error: str | None = field(default=None, init=False)
    swaps: int = field(default=0, init=False)
    _current: Snapshot | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    @property
    def current(self) -> Snapshot | None:
        return self._current

    def refresh(self) -> bool:
        """Load the published snapshot if it is not the one in use; True if it was swapped."""
        with self._lock:
            try:
                name = current_snapshot_name(self.directory)
            except SnapshotError as exc:  # e.g. CURRENT pointing outside: keep what serves
                self._refused("named in CURRENT", exc)
                return False
            if name is None or (self._current is not None and self._current.name == name):
                return False
            try:
                fresh = load_snapshot(
                    self.directory,
                    self.info,
                    mmap_min_bytes=self.mmap_min_bytes,
                    verify_checksums=self.verify_checksums,
                    reverify_unchanged=self.reverify_unchanged,
                    name=name,
                    scan=self.scan,
                )
            except (SnapshotError, ModelMismatchError) as exc:
                self._refused(name, exc)
                return False
            # One reference assignment: a request keeps the snapshot it started with.
            self._current = fresh
            self.error = None
            self.swaps += 1
            log.info("serving snapshot %s (%d vectors)", fresh.name, len(fresh))
            return True

    def _refused(self, name: str, exc: Exception) -> None:
        if self.error != str(exc):  # once, not on every poll
            log.error("snapshot %s refused: %s", name, exc)
        self.error = str(exc)

    def watch(self, interval_s: float) -> threading.Thread:
        """Poll for newly published snapshots every ``interval_s`` seconds until :meth:`stop`."""

        def run() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.refresh()
                except Exception:  # keep watching whatever one attempt raised
                    log.exception("snapshot refresh failed")

        thread = threading.Thread(target=run, name="snapshot-watch", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()


class StoreHandle:
    """The live Qdrant collection, reconnected on demand at most every ``retry_s`` seconds
    when it was unreachable (meanwhile callers get :class:`UnavailableError`)."""

    def __init__(self, opener: Callable[[], VectorStore], *, retry_s: float = 5.0) -> None:
        self._opener = opener
        self._store: VectorStore | None = None
        self._lock = threading.Lock()
        self._retry_s = retry_s
        self._next_try = 0.0
        self._failure: StoreError | ModelMismatchError | None = None
        self.error: str | None = None
        self.damage: str | None = None
        """Set when the open collection could not be read back whole (see :meth:`verify`)."""

    def get(self) -> VectorStore:
        if self._store is not None:
            return self._store
        with self._lock:
            if self._store is None:
                if time.monotonic() >= self._next_try:
                    try:
                        self._store = self._opener()
                        self.error, self._failure = None, None
                        return self._store
                    except (StoreError, ModelMismatchError) as exc:
                        self.error, self._failure = str(exc), exc
                        self._next_try = time.monotonic() + self._retry_s
                # Until the next try, every caller hears the last failure as it was: a
                # collection of other models stays that (searches word it), the rest unreachable.
                if isinstance(self._failure, ModelMismatchError):  # a fresh one: no traceback grows
                    raise ModelMismatchError(str(self._failure))
                raise UnavailableError(
                    f"the vector store is unreachable: {self.error}"
                ) from self._failure
        return self._store

    @property
    def connected(self) -> bool:
        return self._store is not None

    def verify(self) -> str | None:
        """Read the live collection back whole; the damage found, also kept in :attr:`damage`."""
        from timbre.store.integrity import REBUILD_HINT, damage_of

        store = self.get()
        damage = damage_of(store)
        if self._store is not store:
            return None  # closed meanwhile (shutdown): what failed was the closing, not the files
        self.damage = None if damage is None else f"{damage}. Its files are damaged. {REBUILD_HINT}"
        if self.damage is not None:
            log.error("vector store: %s", self.damage)
        return self.damage

    def close(self) -> None:
        with self._lock:
            store, self._store = self._store, None  # first: a reader sees it gone, then closed
            if store is not None:
                store.close()


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
        out: dict[str, dict[str, Any]] = {}
        snapshot = self.snapshots.current
        rest = []
        for item_id in ids:
            if not is_uuid(item_id):
                continue
            payload = snapshot.payload(item_id) if snapshot is not None else None
            if payload is None:
                rest.append(item_id)
            else:
                out[item_id] = payload
        if rest:
            try:
                for record in self.store.get().live().retrieve(rest):
                    out[record.id] = record.payload
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
