"""Embedded mode: Qdrant Edge shards in-process, under ``<data_dir>/qdrant-edge``.

Layout::

    qdrant-edge/
      OWNER                 flock held by the owning process; records its pid and command
      LIVE                  {"collection": name}: the live collection, swapped by os.replace
      collections/<name>/
        shard/              the Qdrant Edge shard (segments, write-ahead log, payload indexes)
        collection.json     Timbre metadata: models, dim, distance, schema version, write marker

The shards are configured for exact search with payload indexes and no HNSW graph: exact
FAISS answers unfiltered queries, payload indexes narrow filtered ones, and building a graph
costs minutes per 100k points on a small machine (qdrant/collection.yaml).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import qdrant_edge as qe

from timbre.embedding.info import ModelInfo
from timbre.errors import StoreError
from timbre.settings import QdrantSettings
from timbre.store.collection import META_KEYS, Backend, CollectionView, utc_now
from timbre.store.filters import Condition, MatchAny
from timbre.store.interface import Hit, Point, Record
from timbre.store.lifecycle import StoreBase, StoreGeneration
from timbre.store.lock import OwnerLock
from timbre.store.schema import CollectionSchema

T = TypeVar("T")

OWNER_FILE = "OWNER"
LIVE_FILE = "LIVE"
COLLECTIONS_DIR = "collections"
SHARD_DIR = "shard"
META_FILE = "collection.json"

_DISTANCES = {"Cosine": qe.Distance.Cosine, "Dot": qe.Distance.Dot}
_INDEX_TYPES = {
    "keyword": qe.PayloadSchemaType.Keyword,
    "integer": qe.PayloadSchemaType.Integer,
    "float": qe.PayloadSchemaType.Float,
    "bool": qe.PayloadSchemaType.Bool,
    "datetime": qe.PayloadSchemaType.Datetime,
    "uuid": qe.PayloadSchemaType.Uuid,
}
_MARKER_KEYS = frozenset({"write_seq", "last_write_at"})


def _write_json(path: Path, data: Mapping[str, Any], *, durable: bool) -> None:
    """Replace ``path`` atomically (a reader sees the old or the new file, never half of one)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as out:
        json.dump(data, out, indent=1)
        if durable:
            out.flush()
            os.fsync(out.fileno())
    tmp.replace(path)
    if durable:
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise StoreError(f"{path} does not hold a JSON object")
    return data


def _edge_filter(conditions: Sequence[Condition]) -> qe.Filter | None:
    """The shared filter model in Qdrant Edge's types (the one translation for this adapter)."""
    if not conditions:
        return None
    must: list[Any] = []
    for c in conditions:
        if isinstance(c, MatchAny):
            must.append(qe.FieldCondition(c.field, match=qe.MatchAny(list(c.values))))
        else:
            must.append(
                qe.FieldCondition(
                    c.field, range=qe.RangeFloat(gte=c.gte, lte=c.lte, gt=c.gt, lt=c.lt)
                )
            )
    return qe.Filter(must=must)


def _edge_config(dim: int, distance: str, schema: CollectionSchema) -> qe.EdgeConfig:
    return qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(
            size=dim, distance=_DISTANCES[distance], datatype=qe.VectorStorageDatatype.Float32
        ),
        optimizers=qe.EdgeOptimizersConfig(
            indexing_threshold=schema.optimizers.embedded_indexing_threshold_kb
        ),
        payload_memory=qe.Memory.Cold if schema.payload.on_disk else qe.Memory.Cached,
    )


def _vector(raw: Any) -> np.ndarray | None:
    return None if raw is None else np.asarray(raw, dtype=np.float32)


class EdgeBackend:
    """One Qdrant Edge shard and its metadata file (a :class:`~timbre.store.collection.Backend`)."""

    def __init__(self, directory: Path, shard: qe.EdgeShard, meta: dict[str, Any]) -> None:
        self.name = directory.name
        self.directory = directory
        self._shard = shard
        self._meta = meta

    @classmethod
    def create(
        cls, directory: Path, *, dim: int, schema: CollectionSchema, meta: Mapping[str, Any]
    ) -> EdgeBackend:
        # A directory without metadata is a creation that died half-way: start it over.
        if directory.exists() and not (directory / META_FILE).exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        full_meta = {**meta, "dim": dim, "distance": schema.distance}
        config = _edge_config(dim, schema.distance, schema)
        shard = _call(
            f"create shard in {directory}",
            lambda: qe.EdgeShard.create(str(directory / SHARD_DIR), config),
        )
        backend = cls(directory, shard, full_meta)
        backend.ensure_indexes(schema.indexes)
        # Written last: its presence says the collection was created completely.
        _write_json(directory / META_FILE, full_meta, durable=True)
        return backend

    @classmethod
    def open(cls, directory: Path, schema: CollectionSchema) -> EdgeBackend:
        meta = _read_json(directory / META_FILE)
        # Passing the recorded vector parameters makes Qdrant Edge verify them against the
        # segments; the rest of the config follows the current schema.
        config = _edge_config(int(meta["dim"]), str(meta["distance"]), schema)
        shard = _call(
            f"open shard {directory}", lambda: qe.EdgeShard.load(str(directory / SHARD_DIR), config)
        )
        backend = cls(directory, shard, meta)
        backend.ensure_indexes(schema.indexes)
        return backend

    def _do(self, what: str, fn: Callable[[], T]) -> T:
        return _call(f"{what} on {self.name}", fn)

    def _update(self, what: str, operation: qe.UpdateOperation) -> None:
        self._do(what, lambda: self._shard.update(operation))

    def vector_params(self) -> tuple[int, str]:
        return int(self._meta["dim"]), str(self._meta["distance"])

    def ensure_indexes(self, indexes: Mapping[str, str]) -> None:
        existing = self._do("read info", self._shard.info).payload_schema
        for field, kind in indexes.items():
            if field not in existing:
                self._update(
                    f"create index {field}",
                    qe.UpdateOperation.create_field_index(field, _INDEX_TYPES[kind]),
                )

    def upsert(self, points: Sequence[Point]) -> None:
        edge_points = [qe.Point(p.id, p.vector.tolist(), dict(p.payload)) for p in points]
        self._update("upsert", qe.UpdateOperation.upsert_points(edge_points))

    def delete(self, ids: Sequence[str]) -> None:
        self._update("delete", qe.UpdateOperation.delete_points(list(ids)))

    def set_payload(self, point_id: str, payload: Mapping[str, Any]) -> None:
        self._update("set payload", qe.UpdateOperation.set_payload([point_id], dict(payload)))

    def set_payloads(self, updates: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        # The shard takes one payload per operation; in-process, ~7,000 operations per second.
        for point_id, payload in updates:
            self.set_payload(point_id, payload)

    def retrieve(self, ids: Sequence[str], with_vectors: bool) -> list[Record]:
        records = self._do(
            "retrieve",
            lambda: self._shard.retrieve(list(ids), with_payload=True, with_vector=with_vectors),
        )
        return [Record(str(r.id), r.payload or {}, _vector(r.vector)) for r in records]

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
            with_payload=list(fields) if fields is not None else True,
            with_vector=with_vectors,
        )
        records, next_offset = self._do("scroll", lambda: self._shard.scroll(request))
        page = [Record(str(r.id), r.payload or {}, _vector(r.vector)) for r in records]
        return page, None if next_offset is None else str(next_offset)

    def search(
        self,
        vector: np.ndarray,
        *,
        limit: int,
        offset: int,
        conditions: Sequence[Condition],
        fields: Sequence[str],
        exact: bool,
    ) -> list[Hit]:
        # Always exact: the embedded shard has no graph (``exact`` matters on a server only).
        request = qe.QueryRequest(
            limit=limit,
            offset=offset,
            query=qe.Query.Nearest(vector.tolist()),
            filter=_edge_filter(conditions),
            with_payload=list(fields),
            with_vector=False,
            params=qe.SearchParams(exact=True),
        )
        points = self._do("search", lambda: self._shard.query(request))
        return [Hit(str(p.id), float(p.score), p.payload or {}) for p in points]

    def search_batch(
        self,
        vectors: np.ndarray,
        *,
        limit: int,
        conditions: Sequence[Sequence[Condition]],
        score_threshold: float | None,
        fields: Sequence[str],
    ) -> list[list[Hit]]:
        requests = [
            qe.QueryRequest(
                limit=limit,
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
        results = self._do("batch search", lambda: self._shard.query_batch(batch))
        return [[Hit(str(p.id), float(p.score), p.payload or {}) for p in r] for r in results]

    def facet(self, key: str, conditions: Sequence[Condition], limit: int) -> list[tuple[Any, int]]:
        request = qe.FacetRequest(key, limit=limit, exact=True, filter=_edge_filter(conditions))
        response = self._do(f"facet {key}", lambda: self._shard.facet(request))
        return [(h.value, int(h.count)) for h in response.hits]

    def read_meta(self) -> dict[str, Any]:
        return dict(self._meta)

    def write_meta(self, updates: Mapping[str, Any]) -> None:
        unknown = set(updates) - set(META_KEYS)
        if unknown:
            raise StoreError(f"unknown collection metadata {sorted(unknown)}")
        self._meta.update(updates)
        # The write marker changes on every batch and is advisory; other metadata (the
        # publication time) must survive a power cut.
        _write_json(
            self.directory / META_FILE, self._meta, durable=bool(set(updates) - _MARKER_KEYS)
        )

    def flush(self) -> None:
        self._do("flush", self._shard.flush)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._shard.flush()
        self._do("close", self._shard.close)


def _call(what: str, fn: Callable[[], T]) -> T:
    """Run a Qdrant Edge call, turning its errors into :class:`StoreError` (never transient:
    the engine is in-process, so there is nothing to retry)."""
    try:
        return fn()
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"Qdrant Edge {what} failed: {exc}") from exc


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
    ) -> None:
        super().__init__(info=info, schema=schema, settings=settings)
        self.root = root
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
    ) -> EdgeStore:
        """Take ownership of the embedded store at ``root`` and open its live collection.

        Args:
            root: the embedded store directory (``<data_dir>/qdrant-edge``).
            info: the loaded models; the live collection must match them.
            schema: the collection schema.
            settings: the ``qdrant`` settings section.
            reindex: tolerate a live collection built by other models or another schema
                (logged), so that a new generation can be built and published.

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
        store = cls(root, lock, info=info, schema=schema, settings=settings)
        try:
            store._start(reindex)
        except BaseException:
            store.close()
            raise
        return store

    # -- primitives -------------------------------------------------------------------------

    @property
    def _collections(self) -> Path:
        return self.root / COLLECTIONS_DIR

    def _collection_names(self) -> list[str]:
        if not self._collections.is_dir():
            return []
        return sorted(p.name for p in self._collections.iterdir() if (p / META_FILE).is_file())

    def _meta_of(self, name: str) -> dict[str, Any]:
        return _read_json(self._collections / name / META_FILE)

    def _view(self, backend: Backend) -> CollectionView:
        return CollectionView(
            backend,
            dim=backend.vector_params()[0],
            upsert_batch=self.settings.upsert_batch,
            scroll_batch=self.settings.scroll_batch,
        )

    def _create_backend(self, name: str, meta: dict[str, Any]) -> Backend:
        return EdgeBackend.create(
            self._collections / name, dim=self.info.dim, schema=self.schema, meta=meta
        )

    def _open_backend(self, name: str) -> Backend:
        return EdgeBackend.open(self._collections / name, self.schema)

    def _live_name(self) -> str | None:
        pointer = self.root / LIVE_FILE
        if not pointer.exists():
            return None
        name = _read_json(pointer).get("collection")
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
            _write_json(
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
                live_name = self._live_name()
                if live_name is None:
                    raise StoreError(f"the embedded store at {self.root} has no live collection")
                self._live = self._view(self._open_backend(live_name))
            yield self._live

    def flush(self) -> None:
        with self._swap.using():
            for view in (self._live, *self._generations.values()):
                if view is not None:
                    assert isinstance(view.backend, EdgeBackend)
                    view.backend.flush()

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
