"""One collection on a Qdrant server, or the alias of the live one (:class:`ServerBackend`):
the primitives a :class:`~timbre.store.collection.Collection` runs on in server mode, with the
translation of Timbre's filters into qdrant-client models. It sends every request through the
``call`` it is given, which :class:`~timbre.store.server.ServerStore` makes retry transient
failures; creating, swapping and dropping collections belong to that store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from timbre.store.examples import Examples
from timbre.store.filters import Condition
from timbre.store.records import (
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

Call = Callable[[str, Callable[[], Any]], Any]

_INDEX_TYPES = index_types(qm.PayloadSchemaType, str.upper)


def _qdrant_filter(conditions: Sequence[Condition]) -> qm.Filter | None:
    return translate_filter(
        conditions,
        match_any=lambda field, values: qm.FieldCondition(key=field, match=qm.MatchAny(any=values)),
        in_range=lambda field, r: qm.FieldCondition(
            key=field, range=qm.Range(gte=r.gte, lte=r.lte, gt=r.gt, lt=r.lt)
        ),
        filter_type=qm.Filter,
    )


class ServerBackend:
    """One collection (or the alias of the live one) on a Qdrant server: the primitives under
    a :class:`~timbre.store.collection.Collection`. Every request goes through ``call``
    (:meth:`~timbre.store.server.ServerStore._request`), which retries transient failures."""

    def __init__(
        self,
        client: QdrantClient,
        target: str,
        call: Call,
        *,
        dim: int,
        is_alias: bool,
        distance: str = "Cosine",
    ) -> None:
        self.dim = dim
        self.distance = distance
        self.write_seq: int | None = None  # the write marker, counted by the collection
        self.marker_lock = threading.Lock()
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
        """Nothing to check: a server answers a write it cannot hold with an error."""

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
        vectors: np.ndarray,
        *,
        limit: int,
        offset: int,
        conditions: Sequence[Sequence[Condition]],
        score_threshold: float | None,
        fields: Sequence[str],
        exact: bool,
    ) -> list[list[Hit]]:
        requests = [
            qm.QueryRequest(
                query=vector.tolist(),
                filter=_qdrant_filter(conds),
                limit=limit,
                offset=offset,
                with_payload=list(fields),
                with_vector=False,
                score_threshold=score_threshold,
                params=qm.SearchParams(exact=True) if exact else None,
            )
            for vector, conds in zip(vectors, conditions, strict=True)
        ]
        responses = self._call(
            "search", partial(self._client.query_batch_points, self._target, requests=requests)
        )
        return [hits_of(r.points) for r in responses]

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
        query = qm.RecommendQuery(
            recommend=qm.RecommendInput(
                positive=[v.tolist() for v in examples.positive],
                negative=[v.tolist() for v in examples.negative],
                strategy=qm.RecommendStrategy.AVERAGE_VECTOR,
            )
        )
        response = self._call(
            "recommend",
            partial(
                self._client.query_points,
                self._target,
                query=query,
                query_filter=_qdrant_filter(conditions),
                limit=limit,
                offset=offset,
                with_payload=list(fields),
                with_vectors=False,
                search_params=qm.SearchParams(exact=True) if exact else None,
            ),
        )
        hits = hits_of(response.points)
        if self.distance == "Dot":
            # Cosine normalises the average vector; Dot scores with it as it is.
            norm = float(np.linalg.norm(examples.raw()))
            hits = [Hit(h.id, h.score / norm, h.payload) for h in hits]
        return hits

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
