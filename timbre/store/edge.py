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
an appendable segment with its indexes in RAM; :meth:`EdgeBackend.optimize` (after an ingest
job) rebuilds a large one as an immutable segment whose indexes are memory-mapped.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import qdrant_edge as qe

from timbre.diskspace import FILLS_ON_READ, DiskReserve, filesystem_type, sparse_debt
from timbre.embedding.info import ModelInfo
from timbre.errors import StoreError
from timbre.fsutil import atomic_write
from timbre.settings import QdrantSettings
from timbre.store.collection import Collection
from timbre.store.examples import Examples
from timbre.store.filters import Condition
from timbre.store.lifecycle import Generation, VectorStore
from timbre.store.lock import OwnerLock
from timbre.store.records import (
    INDEX_KINDS,
    META_KEYS,
    Hit,
    Point,
    Record,
    facet_counts,
    hits_of,
    index_types,
    page_of,
    record_of,
    translate_filter,
    utc_now,
    with_payload,
)
from timbre.store.schema import CollectionSchema

T = TypeVar("T")

OWNER_FILE = "OWNER"
LIVE_FILE = "LIVE"
COLLECTIONS_DIR = "collections"
SHARD_DIR = "shard"
META_FILE = "collection.json"

_DISTANCES = {"Cosine": qe.Distance.Cosine, "Dot": qe.Distance.Dot}
_INDEX_TYPES = index_types(qe.PayloadSchemaType, str.capitalize)
_MAPPED_INDEXES = {kind: getattr(qe, f"{kind.capitalize()}IndexParams") for kind in INDEX_KINDS}
"""Index parameter types (``KeywordIndexParams``...), built memory-mapped when
``payload.embedded_indexes_on_disk``."""
_MARKER_KEYS = frozenset({"write_seq", "last_write_at"})
_DEBT_TTL_S = 1.0
"""How long a measured sparse debt is reused (writes come by the thousand; the reserve covers
what the engine starts meanwhile)."""


def _edge_filter(conditions: Sequence[Condition]) -> qe.Filter | None:
    return translate_filter(
        conditions,
        match_any=lambda field, values: qe.FieldCondition(field, match=qe.MatchAny(values)),
        in_range=lambda field, r: qe.FieldCondition(
            field, range=qe.RangeFloat(gte=r.gte, lte=r.lte, gt=r.gt, lt=r.lt)
        ),
        filter_type=qe.Filter,
    )


def _edge_config(dim: int, distance: str, schema: CollectionSchema) -> qe.EdgeConfig:
    return qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(
            size=dim,
            distance=_DISTANCES[distance],
            datatype=qe.VectorStorageDatatype.Float32,
            on_disk=schema.vectors.embedded_on_disk,
        ),
        optimizers=qe.EdgeOptimizersConfig(
            indexing_threshold=schema.optimizers.embedded_indexing_threshold_kb
        ),
        # m = 0: a segment the optimiser rebuilds gets no graph (only exact search runs here).
        hnsw_config=qe.HnswIndexConfig(
            m=0, ef_construct=100, full_scan_threshold=schema.hnsw.full_scan_threshold_kb
        ),
        payload_memory=qe.Memory.Cold if schema.payload.on_disk else qe.Memory.Cached,
    )


def edge_call(what: str, fn: Callable[[], T]) -> T:
    """Run a Qdrant Edge call, turning its errors into :class:`StoreError` (never transient:
    the engine is in-process, so there is nothing to retry)."""
    try:
        return fn()
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"Qdrant Edge {what} failed: {exc}") from exc


class EdgeBackend:
    """One Qdrant Edge shard and its metadata file: the primitives under a
    :class:`~timbre.store.collection.Collection`."""

    def __init__(
        self,
        directory: Path,
        shard: qe.EdgeShard,
        meta: dict[str, Any],
        reserve: DiskReserve | None = None,
    ) -> None:
        self.name = directory.name
        self.directory = directory
        self.dim = int(meta["dim"])
        self.write_seq: int | None = None  # the write marker, counted by the collection
        self.marker_lock = threading.Lock()
        self._shard = shard
        self._meta = meta
        self._reserve = reserve
        self._debt, self._debt_at = 0, -float("inf")  # the shard's sparse debt, and when read

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        dim: int,
        schema: CollectionSchema,
        meta: Mapping[str, Any],
        reserve: DiskReserve | None = None,
    ) -> EdgeBackend:
        # A directory without metadata is a creation that died half-way: start it over.
        if directory.exists() and not (directory / META_FILE).exists():
            shutil.rmtree(directory)
        if reserve is not None:
            reserve.check(0, f"creating the collection {directory.name}")
        directory.mkdir(parents=True)
        full_meta = {**meta, "dim": dim, "distance": schema.distance}
        config = _edge_config(dim, schema.distance, schema)
        shard = edge_call(
            f"create shard in {directory}",
            lambda: qe.EdgeShard.create(str(directory / SHARD_DIR), config),
        )
        backend = cls(directory, shard, full_meta, reserve)
        backend.ensure_indexes(schema.indexes, mapped=schema.payload.embedded_indexes_on_disk)
        # Written last: its presence says the collection was created completely.
        write_json(directory / META_FILE, full_meta, durable=True)
        return backend

    @classmethod
    def open(
        cls, directory: Path, schema: CollectionSchema, reserve: DiskReserve | None = None
    ) -> EdgeBackend:
        meta = read_json(directory / META_FILE)
        if reserve is not None and filesystem_type(directory) in FILLS_ON_READ:
            # There, mapping the shard claims every sparse byte of it at once: refuse, or the
            # first read of a page the disk cannot back kills the process.
            reserve.check(
                sparse_debt(directory / SHARD_DIR),
                f"opening the collection {directory.name} (tmpfs fills its sparse files)",
                reserve=False,
            )
        # Passing the recorded vector parameters makes Qdrant Edge verify them against the
        # segments; the rest of the config follows the current schema.
        config = _edge_config(int(meta["dim"]), str(meta["distance"]), schema)
        shard = edge_call(
            f"open shard {directory}", lambda: qe.EdgeShard.load(str(directory / SHARD_DIR), config)
        )
        backend = cls(directory, shard, meta, reserve)
        backend.ensure_indexes(schema.indexes, mapped=schema.payload.embedded_indexes_on_disk)
        return backend

    def _do(self, what: str, fn: Callable[[], T]) -> T:
        return edge_call(f"{what} on {self.name}", fn)

    def _update(self, what: str, operation: qe.UpdateOperation) -> None:
        self._do(what, lambda: self._shard.update(operation))

    def vector_params(self) -> tuple[int, str]:
        return int(self._meta["dim"]), str(self._meta["distance"])

    def ensure_indexes(self, indexes: Mapping[str, str], *, mapped: bool = False) -> None:
        """Create the missing payload indexes; ``mapped``: memory-mapped once their segment is
        immutable (see :meth:`optimize`), in RAM otherwise."""
        existing = self._do("read info", self._shard.info).payload_schema
        for field, kind in indexes.items():
            if field not in existing:
                schema = (
                    _MAPPED_INDEXES[kind](memory=qe.Memory.Cold) if mapped else _INDEX_TYPES[kind]
                )
                self._update(
                    f"create index {field}", qe.UpdateOperation.create_field_index(field, schema)
                )

    def ensure_space(self, batch_bytes: int) -> None:
        """Raise DiskFullError unless the disk can back a write of about ``batch_bytes`` and
        every sparse byte of the shard, with the reserve to spare (:mod:`timbre.diskspace`)."""
        if self._reserve is None:
            return
        now = time.monotonic()
        if now - self._debt_at > _DEBT_TTL_S:
            self._debt, self._debt_at = sparse_debt(self.directory / SHARD_DIR), now
        self._reserve.check(batch_bytes + self._debt, f"writing to the collection {self.name}")

    def optimize(self) -> bool:
        """Rebuild the segments past the indexing threshold as immutable ones; True if any was.
        Holds the GIL throughout, and needs about the shard's size free (else DiskFullError)."""
        if self._reserve is not None:
            shard = self.directory / SHARD_DIR
            size = sum(p.stat().st_blocks * 512 for p in shard.rglob("*") if p.is_file())
            self._reserve.check(size + sparse_debt(shard), f"compacting {self.name}")
        return bool(self._do("optimize", self._shard.optimize))

    def upsert(self, points: Sequence[Point]) -> None:
        edge_points = [qe.Point(p.id, p.vector.tolist(), dict(p.payload)) for p in points]
        self._update("upsert", qe.UpdateOperation.upsert_points(edge_points))

    def delete(self, ids: Sequence[str]) -> None:
        self._update("delete", qe.UpdateOperation.delete_points(list(ids)))

    def set_payload(self, point_id: str, payload: Mapping[str, Any]) -> None:
        self._update("set payload", qe.UpdateOperation.set_payload([point_id], dict(payload)))

    def set_payloads(self, updates: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        # The shard takes one payload per operation (cheap: in-process).
        for point_id, payload in updates:
            self.set_payload(point_id, payload)

    def retrieve(self, ids: Sequence[str], with_vectors: bool) -> list[Record]:
        records = self._do(
            "retrieve",
            lambda: self._shard.retrieve(list(ids), with_payload=True, with_vector=with_vectors),
        )
        return [record_of(r) for r in records]

    def count(self, conditions: Sequence[Condition]) -> int:
        request = qe.CountRequest(exact=True, filter=_edge_filter(conditions))
        return self._do("count", lambda: self._shard.count(request))

    def scroll_page(
        self,
        *,
        offset: str | None,
        limit: int,
        conditions: Sequence[Condition],
        fields: Sequence[str] | None,
        with_vectors: bool,
    ) -> tuple[list[Record], str | None]:
        request = qe.ScrollRequest(
            offset=offset,
            limit=limit,
            filter=_edge_filter(conditions),
            with_payload=with_payload(fields),
            with_vector=with_vectors,
        )
        return page_of(*self._do("scroll", lambda: self._shard.scroll(request)))

    def search(
        self,
        vectors: np.ndarray,
        *,
        limit: int,
        offset: int,
        conditions: Sequence[Sequence[Condition]],
        score_threshold: float | None,
        fields: Sequence[str],
        exact: bool,
    ) -> list[list[Hit]]:
        # Always exact: the embedded shard has no graph (``exact`` matters on a server only).
        requests = [
            qe.QueryRequest(
                limit=limit,
                offset=offset,
                query=qe.Query.Nearest(vector.tolist()),
                filter=_edge_filter(conds),
                with_payload=list(fields),
                with_vector=False,
                score_threshold=score_threshold,
                params=qe.SearchParams(exact=True),
            )
            for vector, conds in zip(vectors, conditions, strict=True)
        ]
        batch = qe.QueryBatchRequest(requests)
        results = self._do("search", lambda: self._shard.query_batch(batch))
        return [hits_of(r) for r in results]

    def recommend(
        self,
        examples: Examples,
        *,
        limit: int,
        offset: int,
        conditions: Sequence[Condition],
        fields: Sequence[str],
        exact: bool,
    ) -> list[Hit]:
        # The shard offers recommend as best_score and sum_scores only; Qdrant resolves
        # average_vector into a nearest query above the shard, as done here.
        [hits] = self.search(
            examples.vector()[None],
            limit=limit,
            offset=offset,
            conditions=[conditions],
            score_threshold=None,
            fields=fields,
            exact=exact,
        )
        return hits

    def facet(self, key: str, conditions: Sequence[Condition], limit: int) -> list[tuple[Any, int]]:
        request = qe.FacetRequest(key, limit=limit, exact=True, filter=_edge_filter(conditions))
        return facet_counts(self._do(f"facet {key}", lambda: self._shard.facet(request)).hits)

    def read_meta(self) -> dict[str, Any]:
        return dict(self._meta)

    def write_meta(self, updates: Mapping[str, Any]) -> None:
        unknown = set(updates) - set(META_KEYS)
        if unknown:
            raise StoreError(f"unknown collection metadata {sorted(unknown)}")
        self._meta.update(updates)
        # The write marker changes on every batch and is advisory; other metadata (the
        # publication time) must survive a power cut.
        write_json(
            self.directory / META_FILE, self._meta, durable=bool(set(updates) - _MARKER_KEYS)
        )

    def flush(self) -> None:
        self._do("flush", self._shard.flush)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._shard.flush()
        self._do("close", self._shard.close)


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


# -- the small JSON files (``LIVE``, ``collection.json``) -----------------------------------


def write_json(path: Path, data: Mapping[str, Any], *, durable: bool) -> None:
    """Replace ``path`` atomically; ``durable``: it survives a power cut."""
    atomic_write(path, json.dumps(data, indent=1), durable=durable)


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; StoreError if unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise StoreError(f"{path} does not hold a JSON object")
    return data
