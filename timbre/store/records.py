"""The values a collection reads and writes, its metadata and checks, and the helpers both
engines (:mod:`timbre.store.edge`, :mod:`timbre.store.server`) share, so they cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args

import numpy as np

from timbre.errors import InvalidPointError
from timbre.fsutil import now_iso
from timbre.store.filters import Condition, MatchAny, Range
from timbre.store.payload import (
    DERIVED_VERSION,
    point_id,
    with_derived,
)
from timbre.store.schema import IndexType

C = TypeVar("C")
F = TypeVar("F")


@dataclass(frozen=True)
class Point:
    """One point to write: id (``point_id`` of the payload's ``content_sha256``), float32
    L2-normalised vector, payload (:func:`~timbre.store.payload.build_payload`)."""

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
    """How far a collection's writes have gone (for snapshot freshness): ``seq`` grows by one
    per write operation and never decreases; ``at`` is the ISO time of the last, or None."""

    seq: int
    at: str | None


@dataclass(frozen=True)
class CollectionInfo:
    """What a collection is and who built it: its versioned name (never the alias), vector
    size and distance, the models (``ModelInfo.as_dict()``, ``audio_key()``), schema version,
    creation and publication times (ISO UTC; None while being built) and write marker."""

    name: str
    dim: int
    distance: str
    model: dict[str, Any]
    audio_key: dict[str, Any]
    schema_version: int
    created_at: str
    published_at: str | None
    last_write: WriteMarker = field(default_factory=lambda: WriteMarker(0, None))


@dataclass(frozen=True)
class Rewritten:
    """What :meth:`Collection.rewrite_payloads` went through: points read, and points whose
    payload was (or, in a dry run, would have been) rewritten."""

    points: int
    changed: int


# -- metadata ---------------------------------------------------------------------------------

META_KEYS = (
    "model",
    "audio_key",
    "schema_version",
    "created_at",
    "published_at",
    "write_seq",
    "last_write_at",
    "derived_version",
    "labels_version",
)
"""Collection metadata Timbre keeps (Qdrant collection metadata / the embedded JSON file)."""


def utc_now() -> str:
    """The time now, ISO 8601 UTC (how every time in the metadata is written)."""
    return now_iso("auto")


def new_meta(
    info_dict: Mapping[str, Any], audio_key: Mapping[str, Any], schema_version: int
) -> dict[str, Any]:
    """Metadata of a collection created now."""
    return {
        "model": dict(info_dict),
        "audio_key": dict(audio_key),
        "schema_version": schema_version,
        "created_at": utc_now(),
        "published_at": None,
        "write_seq": 0,
        "last_write_at": None,
        # Written through upsert, so every payload carries the current derivation.
        "derived_version": DERIVED_VERSION,
        "labels_version": None,
    }


def write_marker(meta: Mapping[str, Any]) -> WriteMarker:
    """The write marker recorded in a collection's metadata."""
    return WriteMarker(int(meta.get("write_seq") or 0), meta.get("last_write_at"))


# -- checks -----------------------------------------------------------------------------------

NORM_TOLERANCE = 1e-3
"""How far from 1 a vector's L2 norm may be: float32 normalisation lands within ~1e-7, so
anything further is an un-normalised vector, which would score differently in FAISS."""


def check_vector(vector: np.ndarray, dim: int, what: str) -> np.ndarray:
    """``vector`` as float32 ``[dim]``; InvalidPointError unless finite and L2-normalised."""
    v = np.asarray(vector, dtype=np.float32)
    if v.shape != (dim,):
        raise InvalidPointError(f"{what}: vector shape {v.shape}, expected ({dim},)")
    if not np.all(np.isfinite(v)):
        raise InvalidPointError(f"{what}: vector has NaN or infinite values")
    norm = float(np.linalg.norm(v))
    if abs(norm - 1.0) > NORM_TOLERANCE:
        raise InvalidPointError(f"{what}: vector norm is {norm:.4f}; vectors must be L2-normalised")
    return v


def checked_point(point: Point, dim: int) -> Point:
    """``point`` with a checked vector and its derived payload fields, ready to write;
    InvalidPointError if its id is not ``point_id(content_sha256)`` or it has no paths."""
    sha = point.payload.get("content_sha256")
    if not isinstance(sha, str) or point_id(sha) != point.id:
        raise InvalidPointError(
            f"point {point.id}: id must be point_id(payload['content_sha256']) (got {sha!r})"
        )
    if not point.payload.get("paths"):
        raise InvalidPointError(f"point {point.id}: payload has no paths")
    vector = check_vector(point.vector, dim, f"point {point.id}")
    return Point(point.id, vector, with_derived(point.payload))


# -- shared by both backends ------------------------------------------------------------------

INDEX_KINDS: tuple[str, ...] = get_args(IndexType)
"""The payload index kinds ``qdrant/collection.yaml`` may name."""


def index_types(enum: Any, spelling: Callable[[str], str]) -> dict[str, Any]:
    """Each of :data:`INDEX_KINDS` as the member of an engine's payload schema type, spelt
    by ``spelling`` (``str.capitalize`` for Qdrant Edge, ``str.upper`` for qdrant-client)."""
    return {kind: getattr(enum, spelling(kind)) for kind in INDEX_KINDS}


def translate_filter(
    conditions: Sequence[Condition],
    *,
    match_any: Callable[[str, list[str]], C],
    in_range: Callable[[str, Range], C],
    filter_type: Callable[..., F],
) -> F | None:
    """The shared filter model as ``filter_type(must=...)`` of one engine (every condition must
    hold); None when there is no condition."""
    if not conditions:
        return None
    return filter_type(
        must=[
            match_any(c.field, list(c.values)) if isinstance(c, MatchAny) else in_range(c.field, c)
            for c in conditions
        ]
    )


def with_payload(fields: Sequence[str] | None) -> list[str] | Literal[True]:
    """The payload selector of a read: the fields named, or the whole payload."""
    return list(fields) if fields is not None else True


def record_of(point: Any) -> Record:
    """A retrieved or scrolled point (either engine's type) as a :class:`Record`."""
    vector = None if point.vector is None else np.asarray(point.vector, dtype=np.float32)
    return Record(str(point.id), point.payload or {}, vector)


def hits_of(points: Sequence[Any]) -> list[Hit]:
    """Scored points (either engine's type) as :class:`Hit` values, in the engine's order."""
    return [Hit(str(p.id), float(p.score), p.payload or {}) for p in points]


def page_of(records: Sequence[Any], next_offset: Any) -> tuple[list[Record], str | None]:
    """One scroll answer: its records and the offset of the next page (None after the last)."""
    return [record_of(r) for r in records], None if next_offset is None else str(next_offset)


def facet_counts(hits: Sequence[Any]) -> list[tuple[Any, int]]:
    """A facet answer's hits (either engine's type) as ``(value, points)`` pairs."""
    return [(h.value, int(h.count)) for h in hits]
