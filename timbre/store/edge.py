"""Embedded mode: Qdrant Edge shards in-process, under ``<data_dir>/qdrant-edge``.

Layout::

    qdrant-edge/
      OWNER                 flock held by the owning process; records its pid and command
      LIVE                  {"collection": name}: the live collection, swapped by os.replace
      collections/<name>/
        shard/              the Qdrant Edge shard (segments, write-ahead log, payload indexes)
        collection.json     Timbre metadata: models, dim, distance, schema version, write marker

The shards search exactly, with payload indexes and no HNSW graph (the snapshot answers
unfiltered queries; a graph costs minutes per 100k points on a small machine). Writes land in
an appendable segment with its indexes in RAM;
:meth:`~timbre.store.edge_shard.EdgeBackend.optimize` (after an ingest job) rebuilds a large
one as an immutable segment whose indexes are memory-mapped. One shard's primitives live in
:mod:`timbre.store.edge_shard`; this module owns the store: its lock, the live pointer, the swap.
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
from timbre.store.collection import Collection
from timbre.store.edge_shard import META_FILE, EdgeBackend, read_json, write_json
from timbre.store.lifecycle import Generation, VectorStore
from timbre.store.lock import OwnerLock
from timbre.store.records import utc_now
from timbre.store.schema import CollectionSchema

OWNER_FILE = "OWNER"
LIVE_FILE = "LIVE"
COLLECTIONS_DIR = "collections"


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


class _LiveShard(Collection):
    """The live collection of an :class:`EdgeStore`: each operation holds the live shard
    against a swap, which waits for the operations under way and then closes the old shard."""

    def __init__(self, store: EdgeStore) -> None:
        super().__init__(None, store.settings)
        self._store = store

    @contextlib.contextmanager
    def _use(self) -> Iterator[EdgeBackend]:
        with self._store._swap.using():
            yield self._store._live_backend()


class EdgeStore(VectorStore):
    """The embedded store: Qdrant Edge shards owned by this process (see the module docstring)."""

    mode: Literal["embedded", "server"] = "embedded"

    def __init__(
        self,
        root: Path,
        *,
        info: ModelInfo,
        schema: CollectionSchema,
        settings: QdrantSettings,
        min_free_bytes: int | None,
    ) -> None:
        """Take ownership of the embedded store at ``root`` (``<data_dir>/qdrant-edge``);
        ``min_free_bytes``: the free space every write keeps (None = no check)."""
        super().__init__(info=info, schema=schema, settings=settings)
        self.root = root
        self._lock = OwnerLock(
            root / OWNER_FILE,
            what=f"The embedded Qdrant store at {root}",
            remedy=(
                "Only one process may own an embedded store: stop that process (or wait for "
                "its job to finish) and try again, or run a Qdrant server and set "
                "TIMBRE_QDRANT__URL so that several processes can share the collection."
            ),
        )
        self._lock.acquire()
        self._reserve = None if min_free_bytes is None else DiskReserve(root, min_free_bytes)
        self._swap = _SwapLock()
        self._live: EdgeBackend | None = None
        self._live_view = _LiveShard(self)

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

    def _create_backend(self, name: str, meta: dict[str, Any]) -> EdgeBackend:
        return EdgeBackend.create(
            self._collections / name,
            dim=self.info.dim,
            schema=self.schema,
            meta=meta,
            reserve=self._reserve,
        )

    def _open_backend(self, name: str) -> EdgeBackend:
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

    def _swap_live(self, generation: Generation) -> None:
        assert isinstance(generation.backend, EdgeBackend)
        generation.backend.flush()  # the new live shard is on disk before the pointer names it
        with self._swap.swapping():
            write_json(
                self.root / LIVE_FILE,
                {"collection": generation.name, "since": utc_now()},
                durable=True,
            )
            previous, self._live = self._live, generation.backend
        if previous is not None:
            previous.close()

    def _drop(self, name: str) -> None:
        generation = self._generations.pop(name, None)
        if generation is not None:
            assert isinstance(generation.backend, EdgeBackend)
            generation.backend.close()
        shutil.rmtree(self._collections / name, ignore_errors=True)

    def live(self) -> Collection:
        return self._live_view

    def _live_backend(self) -> EdgeBackend:
        """The live shard, opened on first use (call under ``self._swap.using()``)."""
        if self._live is None:
            if not self._lock.held:  # closed: reopening would bypass the one-owner lock
                raise StoreError(f"the embedded store at {self.root} is closed")
            live_name = self._live_name()
            if live_name is None:
                raise StoreError(f"the embedded store at {self.root} has no live collection")
            self._live = self._open_backend(live_name)
        return self._live

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
        building = (g.backend for g in self._generations.values())
        return [b for b in (self._live, *building) if isinstance(b, EdgeBackend)]

    def close(self) -> None:
        """Flush and close every open shard, then release ownership (idempotent)."""
        if not self._lock.held:
            return
        with self._swap.swapping():
            backends = self._open_backends()
            self._live = None
            self._generations.clear()
        try:
            for backend in backends:
                backend.close()
        finally:
            self._lock.release()
