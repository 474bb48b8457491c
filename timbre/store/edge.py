"""Embedded mode: Qdrant Edge shards in-process, under ``<data_dir>/qdrant-edge``.

Layout::

    qdrant-edge/
      OWNER                 flock held by the owning process; records its pid and command
      LIVE                  {"collection": name}: the live collection, swapped by os.replace
      collections/<name>/
        shard/              the Qdrant Edge shard (segments, write-ahead log, payload indexes)
        collection.json     Timbre metadata: models, dim, distance, schema version, write marker

One collection, its shard and its metadata file, is :mod:`timbre.store.edge_backend`; this
module is the store around them: ownership, the live pointer and the generations.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from timbre.diskspace import DiskReserve
from timbre.embedding.info import ModelInfo
from timbre.errors import StoreError
from timbre.settings import QdrantSettings
from timbre.store.backend import Backend
from timbre.store.collection import CollectionView
from timbre.store.edge_backend import META_FILE, SHARD_DIR, EdgeBackend
from timbre.store.jsonfile import read_json, write_json
from timbre.store.lifecycle import StoreBase, StoreGeneration
from timbre.store.lock import OwnerLock
from timbre.store.meta import utc_now
from timbre.store.schema import CollectionSchema

OWNER_FILE = "OWNER"
LIVE_FILE = "LIVE"
COLLECTIONS_DIR = "collections"

__all__ = ["COLLECTIONS_DIR", "LIVE_FILE", "META_FILE", "OWNER_FILE", "SHARD_DIR", "EdgeStore"]


class _SwapLock:
    """Many operations on the live shard at once, or one swap that waits for them to finish."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._users = 0
        self._swapping = False

    @contextlib.contextmanager
    def using(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._swapping)
            self._users += 1
        try:
            yield
        finally:
            with self._cond:
                self._users -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def swapping(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._swapping)
            self._swapping = True
            self._cond.wait_for(lambda: self._users == 0)
        try:
            yield
        finally:
            with self._cond:
                self._swapping = False
                self._cond.notify_all()


class EdgeStore(StoreBase):
    """The embedded store: Qdrant Edge shards owned by this process (see the module docstring)."""

    mode: Literal["embedded", "server"] = "embedded"

    def __init__(
        self,
        root: Path,
        lock: OwnerLock,
        *,
        info: ModelInfo,
        schema: CollectionSchema,
        settings: QdrantSettings,
        reserve: DiskReserve | None = None,
    ) -> None:
        super().__init__(info=info, schema=schema, settings=settings)
        self.root = root
        self._reserve = reserve
        self._lock = lock
        self._swap = _SwapLock()
        self._live: CollectionView | None = None

    @classmethod
    def open(
        cls,
        root: Path,
        *,
        info: ModelInfo,
        schema: CollectionSchema,
        settings: QdrantSettings,
        reindex: bool = False,
        min_free_bytes: int | None = None,
    ) -> EdgeStore:
        """Take ownership of the embedded store at ``root`` and open its live collection.

        Args:
            root: the embedded store directory (``<data_dir>/qdrant-edge``).
            info: the loaded models; the live collection must match them.
            schema: the collection schema.
            settings: the ``qdrant`` settings section.
            reindex: tolerate a live collection built by other models or another schema
                (logged), so that a new generation can be built and published.
            min_free_bytes: the free space every write keeps (``disk.min_free_bytes``);
                None = no check.

        Raises:
            StoreLockedError: another process owns the store.
            SchemaMismatchError: the live collection's vector size, distance or schema
                version does not match (unless ``reindex``).
            ModelMismatchError: the live collection was built by other models (unless
                ``reindex``).
            StoreError: the store cannot be read.
        """
        lock = OwnerLock(
            root / OWNER_FILE,
            what=f"The embedded Qdrant store at {root}",
            remedy=(
                "Only one process may own an embedded store: stop that process (or wait for "
                "its job to finish) and try again, or run a Qdrant server and set "
                "TIMBRE_QDRANT__URL so that several processes can share the collection."
            ),
        )
        lock.acquire()
        reserve = None if min_free_bytes is None else DiskReserve(root, min_free_bytes)
        store = cls(root, lock, info=info, schema=schema, settings=settings, reserve=reserve)
        return store._started(reindex)

    # -- primitives -------------------------------------------------------------------------

    @property
    def _collections(self) -> Path:
        return self.root / COLLECTIONS_DIR

    def _collection_names(self) -> list[str]:
        if not self._collections.is_dir():
            return []
        return sorted(p.name for p in self._collections.iterdir() if (p / META_FILE).is_file())

    def _meta_of(self, name: str) -> dict[str, Any]:
        return read_json(self._collections / name / META_FILE)

    def _create_backend(self, name: str, meta: dict[str, Any]) -> Backend:
        return EdgeBackend.create(
            self._collections / name,
            dim=self.info.dim,
            schema=self.schema,
            meta=meta,
            reserve=self._reserve,
        )

    def _open_backend(self, name: str) -> Backend:
        return EdgeBackend.open(self._collections / name, self.schema, self._reserve)

    def _live_name(self) -> str | None:
        pointer = self.root / LIVE_FILE
        if not pointer.exists():
            return None
        name = read_json(pointer).get("collection")
        if not isinstance(name, str) or not (self._collections / name / META_FILE).is_file():
            raise StoreError(
                f"{pointer} names the collection {name!r}, which does not exist under "
                f"{self._collections}; restore it or remove {pointer} to start afresh"
            )
        return name

    def _swap_live(self, generation: StoreGeneration) -> None:
        assert isinstance(generation.backend, EdgeBackend)
        generation.backend.flush()  # the new live shard is on disk before the pointer names it
        with self._swap.swapping():
            write_json(
                self.root / LIVE_FILE,
                {"collection": generation.name, "since": utc_now()},
                durable=True,
            )
            previous, self._live = self._live, generation
        if previous is not None:
            _close_backend(previous.backend)

    def _drop(self, name: str) -> None:
        generation = self._generations.pop(name, None)
        if generation is not None:
            _close_backend(generation.backend)
        shutil.rmtree(self._collections / name, ignore_errors=True)

    @contextlib.contextmanager
    def _using_live(self) -> Iterator[CollectionView]:
        with self._swap.using():
            if self._live is None:
                if not self._lock.held:  # closed: reopening would bypass the one-owner lock
                    raise StoreError(f"the embedded store at {self.root} is closed")
                live_name = self._live_name()
                if live_name is None:
                    raise StoreError(f"the embedded store at {self.root} has no live collection")
                backend = self._open_backend(live_name)
                self._live = self._view(backend, backend.vector_params()[0])
            yield self._live

    def flush(self) -> None:
        with self._swap.using():  # no swap closes a shard while it flushes
            for backend in self._open_backends():
                backend.flush()

    def optimize(self) -> bool:
        changed = False
        with self._swap.using():
            for backend in self._open_backends():
                changed = backend.optimize() or changed
        return changed

    def _open_backends(self) -> list[EdgeBackend]:
        """The shards open now: the live one and any generation being built."""
        backends = []
        for view in (self._live, *self._generations.values()):
            if view is not None:
                assert isinstance(view.backend, EdgeBackend)
                backends.append(view.backend)
        return backends

    def close(self) -> None:
        """Flush and close every open shard, then release ownership (idempotent)."""
        if not self._lock.held:
            return
        with self._swap.swapping():
            views = [self._live, *self._generations.values()]
            self._live = None
            self._generations.clear()
        try:
            for view in views:
                if view is not None:
                    _close_backend(view.backend)
        finally:
            self._lock.release()


def _close_backend(backend: Backend) -> None:
    assert isinstance(backend, EdgeBackend)
    backend.close()
