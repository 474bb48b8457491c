"""What the two Qdrant adapters share, whatever client API they speak.

:mod:`timbre.store.edge_backend` (Qdrant Edge, in-process) and
:mod:`timbre.store.server_backend` (qdrant-client) build their requests in their own types;
the filter translation's shape, the payload index kinds and the reading of the answers back
into :class:`~timbre.store.interface.Record` and :class:`~timbre.store.interface.Hit` are
the same for both, and live here once so that the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

import numpy as np

from timbre.store.filters import Condition, MatchAny, Range
from timbre.store.interface import Hit, Record

C = TypeVar("C")
F = TypeVar("F")

INDEX_KINDS = ("keyword", "integer", "float", "bool", "datetime", "uuid")
"""The payload index kinds ``qdrant/collection.yaml`` may name."""


def index_types(enum: Any, spelling: Callable[[str], str]) -> dict[str, Any]:
    """Each of :data:`INDEX_KINDS` as the member of an engine's payload schema type.

    Args:
        enum: the engine's payload schema type (``qe.PayloadSchemaType``,
            ``qm.PayloadSchemaType``).
        spelling: how that engine spells a kind's member name (``str.capitalize``,
            ``str.upper``).

    Raises:
        AttributeError: the engine has no such member (at import: an incompatible client).
    """
    return {kind: getattr(enum, spelling(kind)) for kind in INDEX_KINDS}


def translate_filter(
    conditions: Sequence[Condition],
    *,
    match_any: Callable[[str, list[str]], C],
    in_range: Callable[[str, Range], C],
    all_of: Callable[[list[C]], F],
) -> F | None:
    """The shared filter model in one engine's types: every condition must hold.

    Args:
        conditions: the conditions of a :class:`~timbre.store.filters.SearchFilter`.
        match_any: the engine's "field holds one of these values" condition.
        in_range: the engine's numeric range condition on a field.
        all_of: the engine's filter whose conditions must all hold.

    Returns:
        None when there is no condition (the engine's "no filter").
    """
    if not conditions:
        return None
    return all_of(
        [
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
