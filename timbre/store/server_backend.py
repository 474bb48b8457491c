"""One collection on a Qdrant server (or the alias of the live one), through qdrant-client.

Every request goes through the store's ``call`` (:meth:`timbre.store.server.ServerStore._request`),
which retries transient failures; all of them are idempotent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from timbre.store.adapter import (
    facet_counts,
    hits_of,
    index_types,
    page_of,
    record_of,
    translate_filter,
    with_payload,
)
from timbre.store.filters import Condition
from timbre.store.interface import Hit, Point, Record

Call = Callable[[str, Callable[[], Any]], Any]

_INDEX_TYPES = index_types(qm.PayloadSchemaType, str.upper)


def _all_of(must: list[qm.Condition]) -> qm.Filter:
    return qm.Filter(must=must)


def _qdrant_filter(conditions: Sequence[Condition]) -> qm.Filter | None:
    """The shared filter model in qdrant-client's types (the one translation for this adapter)."""
    return translate_filter(
        conditions,
        match_any=lambda field, values: qm.FieldCondition(key=field, match=qm.MatchAny(any=values)),
        in_range=lambda field, r: qm.FieldCondition(
            key=field, range=qm.Range(gte=r.gte, lte=r.lte, gt=r.gt, lt=r.lt)
        ),
        all_of=_all_of,
    )


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
        info: qm.CollectionInfo = self._call(
            f"describe {self._target}", partial(self._client.get_collection, self._target)
        )
        return info

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

    def ensure_space(self, batch_bytes: int) -> None:
        """Nothing to check here: the server's disk is the server's (it answers a write it
        cannot hold with an error, not a crash of this process)."""

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
        return [record_of(r) for r in records]

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
        answer = self._call(
            "scroll",
            partial(
                self._client.scroll,
                self._target,
                scroll_filter=_qdrant_filter(conditions),
                limit=limit,
                offset=offset,
                with_payload=with_payload(fields),
                with_vectors=with_vectors,
            ),
        )
        return page_of(*answer)

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
        return hits_of(response.points)

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
        return [hits_of(r.points) for r in responses]

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
        return facet_counts(response.hits)

    def read_meta(self) -> dict[str, Any]:
        return dict(self._info().config.metadata or {})

    def write_meta(self, updates: Mapping[str, Any]) -> None:
        # The server merges these keys into the stored metadata.
        self._call(
            "update metadata",
            partial(self._client.update_collection, self.name, metadata=dict(updates)),
        )
