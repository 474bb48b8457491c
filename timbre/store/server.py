"""Server mode: qdrant-client against a Qdrant server (or its in-memory stand-in in tests).

The live collection is the alias ``qdrant.collection``; searches and writes address the
alias, so every process follows a swap (``update_collection_aliases`` deletes and recreates
it in one atomic request). Timbre's metadata (models, schema version, publication time,
write marker) lives in the collection's own metadata (Qdrant >= 1.16). Every request is
retried on transient failures (:mod:`timbre.store.retry`); all of them are idempotent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, Literal, TypeVar

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from timbre.embedding.info import ModelInfo
from timbre.settings import QdrantSettings
from timbre.store.collection import Backend, CollectionView
from timbre.store.filters import Condition, MatchAny
from timbre.store.interface import Hit, Point, Record
from timbre.store.lifecycle import StoreBase, StoreGeneration
from timbre.store.retry import call_with_retries
from timbre.store.schema import CollectionSchema

T = TypeVar("T")
Call = Callable[[str, Callable[[], Any]], Any]

_DISTANCES = {"Cosine": qm.Distance.COSINE, "Dot": qm.Distance.DOT}
_INDEX_TYPES = {
    "keyword": qm.PayloadSchemaType.KEYWORD,
    "integer": qm.PayloadSchemaType.INTEGER,
    "float": qm.PayloadSchemaType.FLOAT,
    "bool": qm.PayloadSchemaType.BOOL,
    "datetime": qm.PayloadSchemaType.DATETIME,
    "uuid": qm.PayloadSchemaType.UUID,
}


def make_client(settings: QdrantSettings) -> QdrantClient:
    """A client for the server at ``settings.url`` (built once per process, then passed in)."""
    assert settings.url is not None
    return QdrantClient(
        url=settings.url,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        timeout=settings.timeout_s,
        prefer_grpc=settings.prefer_grpc,
    )


def _qdrant_filter(conditions: Sequence[Condition]) -> qm.Filter | None:
    """The shared filter model in qdrant-client's types (the one translation for this adapter)."""
    if not conditions:
        return None
    must: list[qm.Condition] = []
    for c in conditions:
        if isinstance(c, MatchAny):
            must.append(qm.FieldCondition(key=c.field, match=qm.MatchAny(any=list(c.values))))
        else:
            must.append(
                qm.FieldCondition(
                    key=c.field, range=qm.Range(gte=c.gte, lte=c.lte, gt=c.gt, lt=c.lt)
                )
            )
    return qm.Filter(must=must)


def _vector(raw: Any) -> np.ndarray | None:
    return None if raw is None else np.asarray(raw, dtype=np.float32)


class ServerBackend:
    """One collection (or the alias of the live one) on a Qdrant server."""

    def __init__(self, client: QdrantClient, target: str, call: Call, *, is_alias: bool) -> None:
        self._client = client
        self._target = target
        self._call = call
        self._is_alias = is_alias

    @property
    def name(self) -> str:
        """The collection's real name (an alias is resolved at each call: it may have moved)."""
        if not self._is_alias:
            return self._target
        aliases = self._call("list aliases", self._client.get_aliases).aliases
        return next(
            (a.collection_name for a in aliases if a.alias_name == self._target), self._target
        )

    def _info(self) -> qm.CollectionInfo:
        return self._call(
            f"describe {self._target}", partial(self._client.get_collection, self._target)
        )

    def vector_params(self) -> tuple[int, str]:
        vectors = self._info().config.params.vectors
        if not isinstance(vectors, qm.VectorParams):
            raise TypeError(f"{self._target} has named vectors; Timbre uses one unnamed vector")
        return vectors.size, vectors.distance.value

    def ensure_indexes(self, indexes: Mapping[str, str]) -> None:
        existing = self._info().payload_schema or {}
        for field, kind in indexes.items():
            if field not in existing:
                self._call(
                    f"create index {field}",
                    partial(
                        self._client.create_payload_index,
                        self._target,
                        field_name=field,
                        field_schema=_INDEX_TYPES[kind],
                        wait=True,
                    ),
                )

    def upsert(self, points: Sequence[Point]) -> None:
        structs = [
            qm.PointStruct(id=p.id, vector=p.vector.tolist(), payload=dict(p.payload))
            for p in points
        ]
        self._call("upsert", partial(self._client.upsert, self._target, points=structs, wait=True))

    def delete(self, ids: Sequence[str]) -> None:
        selector = qm.PointIdsList(points=list(ids))
        self._call(
            "delete",
            partial(self._client.delete, self._target, points_selector=selector, wait=True),
        )

    def set_payload(self, point_id: str, payload: Mapping[str, Any]) -> None:
        self._call(
            "set payload",
            partial(
                self._client.set_payload,
                self._target,
                payload=dict(payload),
                points=[point_id],
                wait=True,
            ),
        )

    def set_payloads(self, updates: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        operations: list[qm.UpdateOperation] = [
            qm.SetPayloadOperation(set_payload=qm.SetPayload(payload=dict(p), points=[pid]))
            for pid, p in updates
        ]
        # One request for the whole batch; the server applies the operations in order.
        self._call(
            "set payloads",
            partial(
                self._client.batch_update_points,
                self._target,
                update_operations=operations,
                wait=True,
            ),
        )

    def retrieve(self, ids: Sequence[str], with_vectors: bool) -> list[Record]:
        records = self._call(
            "retrieve",
            partial(
                self._client.retrieve,
                self._target,
                ids=list(ids),
                with_payload=True,
                with_vectors=with_vectors,
            ),
        )
        return [Record(str(r.id), r.payload or {}, _vector(r.vector)) for r in records]

    def count(self, conditions: Sequence[Condition]) -> int:
        result = self._call(
            "count",
            partial(
                self._client.count,
                self._target,
                count_filter=_qdrant_filter(conditions),
                exact=True,
            ),
        )
        return int(result.count)

    def scroll_page(
        self,
        *,
        offset: str | None,
        limit: int,
        conditions: Sequence[Condition],
        fields: Sequence[str] | None,
        with_vectors: bool,
    ) -> tuple[list[Record], str | None]:
        records, next_offset = self._call(
            "scroll",
            partial(
                self._client.scroll,
                self._target,
                scroll_filter=_qdrant_filter(conditions),
                limit=limit,
                offset=offset,
                with_payload=list(fields) if fields is not None else True,
                with_vectors=with_vectors,
            ),
        )
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
        response = self._call(
            "search",
            partial(
                self._client.query_points,
                self._target,
                query=vector.tolist(),
                query_filter=_qdrant_filter(conditions),
                limit=limit,
                offset=offset,
                with_payload=list(fields),
                with_vectors=False,
                search_params=qm.SearchParams(exact=True) if exact else None,
            ),
        )
        return [Hit(str(p.id), float(p.score), p.payload or {}) for p in response.points]

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
            qm.QueryRequest(
                query=vector.tolist(),
                filter=_qdrant_filter(conds),
                limit=limit,
                with_payload=list(fields),
                with_vector=False,
                score_threshold=score_threshold,
                params=qm.SearchParams(exact=True),
            )
            for vector, conds in zip(vectors, conditions, strict=True)
        ]
        responses = self._call(
            "batch search",
            partial(self._client.query_batch_points, self._target, requests=requests),
        )
        return [
            [Hit(str(p.id), float(p.score), p.payload or {}) for p in r.points] for r in responses
        ]

    def facet(self, key: str, conditions: Sequence[Condition], limit: int) -> list[tuple[Any, int]]:
        response = self._call(
            f"facet {key}",
            partial(
                self._client.facet,
                self._target,
                key,
                facet_filter=_qdrant_filter(conditions),
                limit=limit,
                exact=True,
            ),
        )
        return [(h.value, int(h.count)) for h in response.hits]

    def read_meta(self) -> dict[str, Any]:
        return dict(self._info().config.metadata or {})

    def write_meta(self, updates: Mapping[str, Any]) -> None:
        # The server merges these keys into the stored metadata.
        self._call(
            "update metadata",
            partial(self._client.update_collection, self.name, metadata=dict(updates)),
        )


class ServerStore(StoreBase):
    """The server store: a Qdrant server reached through qdrant-client."""

    mode: Literal["embedded", "server"] = "server"

    def __init__(
        self,
        client: QdrantClient,
        *,
        info: ModelInfo,
        schema: CollectionSchema,
        settings: QdrantSettings,
        owns_client: bool,
    ) -> None:
        super().__init__(info=info, schema=schema, settings=settings)
        self._client = client
        self._owns_client = owns_client
        self._live = CollectionView(
            ServerBackend(client, settings.collection, self._request, is_alias=True),
            dim=info.dim,
            upsert_batch=settings.upsert_batch,
            scroll_batch=settings.scroll_batch,
        )

    @classmethod
    def open(
        cls,
        client: QdrantClient,
        *,
        info: ModelInfo,
        schema: CollectionSchema,
        settings: QdrantSettings,
        reindex: bool = False,
        owns_client: bool = True,
    ) -> ServerStore:
        """Open the live collection on the server ``client`` talks to (creating the first one).

        Args:
            client: a qdrant-client client (``QdrantClient(":memory:")`` in tests).
            info: the loaded models; the live collection must match them.
            schema: the collection schema.
            settings: the ``qdrant`` settings section.
            reindex: tolerate a live collection built by other models or another schema.
            owns_client: close the client when the store is closed.

        Raises:
            StoreError: the server cannot be reached (after retries) or refused a request.
            SchemaMismatchError, ModelMismatchError: as for :meth:`EdgeStore.open`.
        """
        store = cls(client, info=info, schema=schema, settings=settings, owns_client=owns_client)
        try:
            store._start(reindex)
        except BaseException:
            store.close()
            raise
        return store

    def _request(self, what: str, fn: Callable[[], T]) -> T:
        return call_with_retries(
            fn,
            what=f"{what} at {self.settings.url or 'the given client'}",
            max_attempts=self.settings.max_attempts,
            backoff_s=self.settings.retry_backoff_s,
        )

    def _backend(self, name: str) -> ServerBackend:
        return ServerBackend(self._client, name, self._request, is_alias=False)

    # -- primitives -------------------------------------------------------------------------

    def _collection_names(self) -> list[str]:
        return sorted(
            c.name
            for c in self._request("list collections", self._client.get_collections).collections
        )

    def _meta_of(self, name: str) -> dict[str, Any]:
        return self._backend(name).read_meta()

    def _create_backend(self, name: str, meta: dict[str, Any]) -> Backend:
        s = self.schema
        self._request(
            f"create collection {name}",
            partial(
                self._client.create_collection,
                name,
                vectors_config=qm.VectorParams(
                    size=self.info.dim,
                    distance=_DISTANCES[s.distance],
                    datatype=qm.Datatype.FLOAT32,
                ),
                shard_number=s.cluster.shard_number,
                replication_factor=s.cluster.replication_factor,
                write_consistency_factor=s.cluster.write_consistency_factor,
                on_disk_payload=s.payload.on_disk,
                hnsw_config=qm.HnswConfigDiff(
                    m=s.hnsw.m,
                    ef_construct=s.hnsw.ef_construct,
                    full_scan_threshold=s.hnsw.full_scan_threshold_kb,
                    payload_m=s.hnsw.payload_m,
                ),
                optimizers_config=qm.OptimizersConfigDiff(
                    indexing_threshold=s.optimizers.server_indexing_threshold_kb
                ),
                metadata=meta,
                timeout=self.settings.timeout_s,
            ),
        )
        backend = self._backend(name)
        backend.ensure_indexes(s.indexes)
        return backend

    def _open_backend(self, name: str) -> Backend:
        backend = self._backend(name)
        backend.ensure_indexes(self.schema.indexes)
        return backend

    def _live_name(self) -> str | None:
        aliases = self._request("list aliases", self._client.get_aliases).aliases
        return next(
            (a.collection_name for a in aliases if a.alias_name == self.settings.collection), None
        )

    def _swap_live(self, generation: StoreGeneration) -> None:
        alias = self.settings.collection
        operations: list[qm.AliasOperations] = []
        if self._live_name() is not None:
            operations.append(
                qm.DeleteAliasOperation(delete_alias=qm.DeleteAlias(alias_name=alias))
            )
        operations.append(
            qm.CreateAliasOperation(
                create_alias=qm.CreateAlias(collection_name=generation.name, alias_name=alias)
            )
        )
        # One request: the server applies both or neither, so the alias always names a
        # complete collection.
        self._request(
            f"point alias {alias} at {generation.name}",
            partial(self._client.update_collection_aliases, change_aliases_operations=operations),
        )

    def _drop(self, name: str) -> None:
        self._request(f"delete collection {name}", partial(self._client.delete_collection, name))

    @contextlib.contextmanager
    def _using_live(self) -> Iterator[CollectionView]:
        yield self._live

    def flush(self) -> None:
        """Nothing to do: the server acknowledged every write (``wait=True``)."""

    def close(self) -> None:
        if self._owns_client:
            with contextlib.suppress(Exception):
                self._client.close()
