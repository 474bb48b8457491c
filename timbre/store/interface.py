"""The store seam: value types and the Protocols that both adapters implement.

``Collection`` is one Qdrant collection (the live one, or a generation being built);
``VectorStore`` is the live collection plus the lifecycle around it (generations, close);
``Generation`` is a collection under construction that can be published atomically.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from timbre.embedding.info import ModelInfo
from timbre.store.facets import FacetValue
from timbre.store.filters import SearchFilter
from timbre.store.payload import DISPLAY_FIELDS, point_id


@dataclass(frozen=True)
class Point:
    """One point to write.

    Attributes:
        id: :func:`timbre.store.payload.point_id` of ``payload["content_sha256"]``.
        vector: float32 ``[dim]``, L2-normalised.
        payload: see :func:`timbre.store.payload.build_payload`.
    """

    id: str
    vector: np.ndarray
    payload: Mapping[str, Any]

    @classmethod
    def of(cls, vector: np.ndarray, payload: Mapping[str, Any]) -> Point:
        """A point whose id derives from its payload's ``content_sha256``."""
        return cls(point_id(payload["content_sha256"]), vector, payload)


@dataclass(frozen=True)
class Record:
    """A stored point as read back (vector only when asked for)."""

    id: str
    payload: dict[str, Any]
    vector: np.ndarray | None = None


@dataclass(frozen=True)
class Hit:
    """One search result: point id, similarity (cosine = inner product) and display payload."""

    id: str
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True)
class WriteMarker:
    """How far a collection's writes have gone (for snapshot freshness).

    Attributes:
        seq: write operations (upsert batches, deletes, payload updates) applied since the
            collection was created; grows by one per operation, never decreases.
        at: ISO 8601 UTC time of the last write, None if never written.
    """

    seq: int
    at: str | None


@dataclass(frozen=True)
class CollectionInfo:
    """What a collection is and who built it.

    Attributes:
        name: the versioned collection name (never the alias).
        dim: vector size.
        distance: Qdrant distance name (``Cosine``).
        model: ``ModelInfo.as_dict()`` of the models that built it.
        audio_key: ``ModelInfo.audio_key()`` of those models.
        schema_version: of ``qdrant/collection.yaml`` when it was created.
        created_at: ISO 8601 UTC.
        published_at: ISO 8601 UTC of its swap to live, None while being built.
        last_write: its write marker.
    """

    name: str
    dim: int
    distance: str
    model: dict[str, Any]
    audio_key: dict[str, Any]
    schema_version: int
    created_at: str
    published_at: str | None
    last_write: WriteMarker = field(default_factory=lambda: WriteMarker(0, None))


class Collection(Protocol):
    """Reads and writes on one collection."""

    @property
    def name(self) -> str:
        """The versioned collection name."""
        ...

    def upsert(self, points: Iterable[Point]) -> int:
        """Insert or replace points in batches (retrying transient failures); returns the count."""
        ...

    def delete(self, ids: Sequence[str]) -> None:
        """Delete points by id (unknown ids are ignored)."""
        ...

    def set_paths(self, point_id: str, paths: Sequence[str]) -> bool:
        """Replace ``paths`` (``path`` = the first) of a stored point; False if it is unknown."""
        ...

    def set_payloads(self, updates: Mapping[str, Mapping[str, Any]]) -> int:
        """Merge partial payloads (``id -> fields``) into stored points, in batches."""
        ...

    def retrieve(self, ids: Sequence[str], *, with_vectors: bool = False) -> list[Record]:
        """The stored points among ``ids``, in the order asked (unknown ids are skipped)."""
        ...

    def vector(self, point_id: str) -> np.ndarray | None:
        """The stored vector of a point, or None if it is unknown."""
        ...

    def count(self, filter: SearchFilter | None = None) -> int:
        """Exact number of points (matching ``filter``)."""
        ...

    def scroll(
        self,
        *,
        filter: SearchFilter | None = None,
        fields: Sequence[str] | None = None,
        with_vectors: bool = False,
        batch_size: int | None = None,
    ) -> Iterator[Record]:
        """Every point (matching ``filter``) in id order, with payload ``fields`` (all if None)."""
        ...

    def search(
        self,
        vector: np.ndarray,
        *,
        top_k: int,
        offset: int = 0,
        filter: SearchFilter | None = None,
        exact: bool = False,
    ) -> list[Hit]:
        """Nearest points by cosine, best first, after skipping ``offset`` of them."""
        ...

    def search_batch(
        self,
        vectors: np.ndarray,
        *,
        top_k: int,
        filters: Sequence[SearchFilter | None],
        score_threshold: float | None = None,
        fields: Sequence[str] = DISPLAY_FIELDS,
    ) -> list[list[Hit]]:
        """Exact nearest points of each row of ``vectors`` under its own filter (one batch)."""
        ...

    def facets(
        self, fields: Sequence[str], *, filter: SearchFilter | None = None, limit: int
    ) -> dict[str, list[FacetValue]]:
        """Most frequent values of each field (display form, exact counts) under ``filter``."""
        ...

    def describe(self) -> CollectionInfo:
        """Identity, models and write marker of the collection."""
        ...

    def last_write(self) -> WriteMarker:
        """The collection's write marker, read fresh."""
        ...


class Generation(Collection, Protocol):
    """A new versioned collection being built; searches cannot see it until :meth:`publish`."""

    def publish(self) -> None:
        """Make this collection the live one in one atomic swap (alias or pointer)."""
        ...

    def abandon(self) -> None:
        """Delete this unpublished collection."""
        ...


class VectorStore(Collection, Protocol):
    """The live collection of a Timbre deployment, embedded or on a server."""

    @property
    def mode(self) -> Literal["embedded", "server"]: ...

    @property
    def info(self) -> ModelInfo:
        """The loaded models, which the live collection must match."""
        ...

    @property
    def needs_reindex(self) -> bool:
        """True when the live collection was built by other models or another schema."""
        ...

    def begin_generation(self) -> Generation:
        """Start (or resume) building a collection for the loaded models and the current schema."""
        ...

    def write_labels_version(self, version: str) -> None:
        """Record which vocabulary and text model labelled the live collection last."""
        ...

    def generations(self) -> list[tuple[str, dict[str, Any], bool]]:
        """``(name, metadata, is_live)`` of every kept collection (e.g. one per model family)."""
        ...

    def read_generation(self, name: str, fields: Sequence[str]) -> list[Record]:
        """Every point of one kept collection, live or not, with its vector."""
        ...

    def flush(self) -> None:
        """Persist pending writes (embedded: segments; server: nothing to do)."""
        ...

    def optimize(self) -> bool:
        """Compact what bulk writes left behind, blocking; True if anything changed.

        Embedded: large appendable segments become immutable ones with memory-mapped payload
        indexes (less memory, faster loads). Server: nothing to do (the server optimises in the
        background by itself).
        """
        ...

    def close(self) -> None:
        """Release the collection, the client and, embedded, the ownership lock."""
        ...
