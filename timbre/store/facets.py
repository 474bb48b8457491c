"""Facet counts (values of a field with how many points hold each), in display form.

Counts come from the engine's exact facet API on the payload indexes. A keyword field people
type is counted on its normalised companion, so ``Techno`` and ``techno`` are one value, shown
in the spelling most points use (a second facet on the display field).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from timbre.store.filters import Condition, MatchAny
from timbre.store.payload import DIRS_FIELD, NORMALISED_FIELDS, normalise_value

FACET_FIELDS = (
    "pack",
    "genre",
    "instrument",
    "category",
    "key",
    "kind",
    "tags",
    "auto_tags",
    "format",
    "bpm_source",
    "key_source",
)
"""Fields that can be faceted: each has a keyword index in ``qdrant/collection.yaml``."""

SPELLINGS_PER_VALUE = 8
"""Display spellings read per counted value (on list fields the spelling facet also returns the
other tags of the same points); a value whose spelling falls outside shows its normalised form."""


@dataclass(frozen=True)
class FacetValue:
    """One value of a field: its display form (``Techno``, the spelling most points use), the
    points (matching the filter) that hold it, and the normalised form filters match
    (``techno``)."""

    value: str
    count: int
    match: str


class _Facets(Protocol):
    def facet(
        self, key: str, conditions: Sequence[Condition], limit: int
    ) -> list[tuple[Any, int]]: ...


def facet_values(
    backend: _Facets, field: str, conditions: Sequence[Condition], limit: int
) -> list[FacetValue]:
    """The ``limit`` most frequent values of ``field`` (of :data:`FACET_FIELDS`, or ``dirs`` for
    folder trees) among points matching ``conditions``."""
    if field not in FACET_FIELDS and field != DIRS_FIELD:
        raise ValueError(f"cannot facet on {field!r}; facet fields: {', '.join(FACET_FIELDS)}")
    if limit < 1:
        raise ValueError(f"limit must be >= 1 (got {limit})")
    companion = NORMALISED_FIELDS.get(field)
    if companion is None:
        return _ordered([(str(v), c, str(v)) for v, c in _held(backend, field, conditions, limit)])
    counted = _held(backend, companion, conditions, limit)
    if not counted:
        return []
    matches = tuple(str(v) for v, _ in counted)
    spellings = backend.facet(
        field, [*conditions, MatchAny(companion, matches)], SPELLINGS_PER_VALUE * len(matches)
    )
    display: dict[str, tuple[int, str]] = {}
    for value, count in spellings:
        norm = normalise_value(field, str(value))
        best = display.get(norm)
        # Most points win; a tie goes to the alphabetically first spelling (deterministic).
        if best is None or (-count, str(value)) < (-best[0], best[1]):
            display[norm] = (count, str(value))
    return _ordered(
        [(display.get(m, (0, m))[1], c, m) for m, c in ((str(v), c) for v, c in counted)]
    )


def _held(
    backend: _Facets, key: str, conditions: Sequence[Condition], limit: int
) -> list[tuple[Any, int]]:
    """The engine's counts without values no point holds: Qdrant Edge keeps counting a value
    every point lost (a folder after a move, a pack after a rename) as 0 until the shard is
    optimised."""
    return [(value, count) for value, count in backend.facet(key, conditions, limit) if count > 0]


def _ordered(rows: list[tuple[str, int, str]]) -> list[FacetValue]:
    """Most frequent first, ties by value: the same order from every engine."""
    rows.sort(key=lambda r: (-r[1], r[0]))
    return [FacetValue(value, count, match) for value, count, match in rows]
