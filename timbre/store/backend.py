"""The seam between the shared collection behaviour and each adapter's client API.

Each adapter supplies a :class:`Backend`, the handful of primitive operations on one
collection in its own API (:mod:`timbre.store.edge_backend`, :mod:`timbre.store.server_backend`);
:class:`~timbre.store.collection.CollectionView` builds the public behaviour on top of it, once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from timbre.store.filters import Condition
from timbre.store.interface import Hit, Point, Record


class Backend(Protocol):
    """Primitive operations on one collection, in one adapter's API."""

    @property
    def name(self) -> str:
        """The collection's real (versioned) name."""
        ...

    def vector_params(self) -> tuple[int, str]:
        """``(size, distance name)`` as the engine reports them."""
        ...

    def ensure_indexes(self, indexes: Mapping[str, str]) -> None: ...

    def ensure_space(self, batch_bytes: int) -> None:
        """Raise :class:`~timbre.errors.DiskFullError` unless a write of about ``batch_bytes``
        is safe on the disk holding the collection (a server checks its own disk)."""
        ...

    def upsert(self, points: Sequence[Point]) -> None: ...

    def delete(self, ids: Sequence[str]) -> None: ...

    def set_payload(self, point_id: str, payload: Mapping[str, Any]) -> None: ...

    def set_payloads(self, updates: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """Merge a different partial payload into each point, in as few requests as the
        engine allows."""
        ...

    def retrieve(self, ids: Sequence[str], with_vectors: bool) -> list[Record]: ...

    def count(self, conditions: Sequence[Condition]) -> int: ...

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
        vector: np.ndarray,
        *,
        limit: int,
        offset: int,
        conditions: Sequence[Condition],
        fields: Sequence[str],
        exact: bool,
    ) -> list[Hit]: ...

    def search_batch(
        self,
        vectors: np.ndarray,
        *,
        limit: int,
        conditions: Sequence[Sequence[Condition]],
        score_threshold: float | None,
        fields: Sequence[str],
    ) -> list[list[Hit]]:
        """One exact nearest-neighbour query per row of ``vectors`` (each with its own
        conditions), planned and run as one batch."""
        ...

    def facet(self, key: str, conditions: Sequence[Condition], limit: int) -> list[tuple[Any, int]]:
        """Exact ``(value, points)`` counts of an indexed keyword field, most frequent first."""
        ...

    def read_meta(self) -> dict[str, Any]: ...

    def write_meta(self, updates: Mapping[str, Any]) -> None: ...
