"""The primitives each engine supplies on one collection (:class:`Backend`), and the write
marker every write advances through them (:func:`mark_write`). A
:class:`~timbre.store.collection.Collection` holds the behaviour once over these; the engines
implement them in :mod:`timbre.store.edge_shard` and :mod:`timbre.store.server_backend`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from timbre.store.examples import Examples
from timbre.store.filters import Condition
from timbre.store.records import Hit, Point, Record, utc_now


class Backend(Protocol):
    """The primitives each engine supplies on one collection, in its own client API
    (:class:`~timbre.store.edge_shard.EdgeBackend`,
    :class:`~timbre.store.server_backend.ServerBackend`)."""

    dim: int
    write_seq: int | None  # the write marker, counted by :func:`mark_write`
    marker_lock: threading.Lock

    @property
    def name(self) -> str:
        """The collection's real (versioned) name."""
        ...

    def vector_params(self) -> tuple[int, str]: ...
    def ensure_space(self, batch_bytes: int) -> None: ...
    def upsert(self, points: Sequence[Point]) -> None: ...
    def delete(self, ids: Sequence[str]) -> None: ...
    def set_payload(self, point_id: str, payload: Mapping[str, Any]) -> None: ...
    def set_payloads(self, updates: Sequence[tuple[str, Mapping[str, Any]]]) -> None: ...
    def retrieve(self, ids: Sequence[str], with_vectors: bool) -> list[Record]: ...
    def count(self, conditions: Sequence[Condition]) -> int: ...
    def facet(
        self, key: str, conditions: Sequence[Condition], limit: int
    ) -> list[tuple[Any, int]]: ...
    def read_meta(self) -> dict[str, Any]: ...
    def write_meta(self, updates: Mapping[str, Any]) -> None: ...

    def scroll_page(
        self,
        *,
        offset: str | None,
        limit: int,
        conditions: Sequence[Condition],
        fields: Sequence[str] | None,
        with_vectors: bool,
    ) -> tuple[list[Record], str | None]: ...

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
        """One nearest-neighbour query per row of ``vectors``, each under its own conditions,
        run as one batch."""
        ...

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
        """Qdrant's ``average_vector`` recommend query (:mod:`timbre.store.examples`), scored
        by cosine with the normalised average vector."""
        ...


def mark_write(backend: Backend) -> None:
    """Advance the write marker *before* the write it stands for: a crash between the two makes
    a snapshot look stale, never a stale one fresh. One process writes a collection at a time,
    so the sequence is read once and then counted on the backend."""
    with backend.marker_lock:
        if backend.write_seq is None:
            backend.write_seq = int(backend.read_meta().get("write_seq") or 0)
        backend.write_seq += 1
        backend.write_meta({"write_seq": backend.write_seq, "last_write_at": utc_now()})
