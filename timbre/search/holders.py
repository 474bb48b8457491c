"""The heavy parts a process holds, each loaded or reconnected on demand: a model
(:class:`Lazy`), the FAISS snapshot in use (:class:`SnapshotHolder`) and the live Qdrant
collection (:class:`StoreHandle`). Each keeps its last failure for ``/readyz`` and ``/v1/stats``
rather than letting it escape a request as a traceback."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from timbre.embedding.info import ModelInfo
from timbre.errors import (
    ModelMismatchError,
    SnapshotError,
    StoreError,
    TimbreError,
    UnavailableError,
)
from timbre.store import VectorStore
from timbre.store.snapshot import ScanOptions, Snapshot, current_snapshot_name, load_snapshot

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
