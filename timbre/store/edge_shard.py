"""One Qdrant Edge shard and its metadata file (:class:`EdgeBackend`), the primitives a
:class:`~timbre.store.collection.Collection` runs on in embedded mode, with the translation of
Timbre's schema and filters into the engine's config and requests. Which shard is live, its
ownership and swapping belong to :class:`~timbre.store.edge.EdgeStore`; this module knows one
shard directory (``shard/`` and ``collection.json``) and nothing of the store around it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import qdrant_edge as qe

from timbre.diskspace import FILLS_ON_READ, DiskReserve, filesystem_type, sparse_debt
from timbre.errors import StoreError
from timbre.fsutil import atomic_write
from timbre.store.examples import Examples
from timbre.store.filters import Condition
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
    with_payload,
)
from timbre.store.schema import CollectionSchema

T = TypeVar("T")

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
