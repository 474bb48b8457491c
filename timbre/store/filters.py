"""The one filter model of Timbre searches, translated by each engine and by the snapshot.

Semantics: AND across fields, any-of within a field's list; ranges are inclusive at both
ends unless a bound is flagged exclusive (Qdrant's gt/lt); a point whose field is missing or
null never matches a condition on that field. Keyword values are normalised here and matched
against the store's normalised companions (:data:`timbre.store.payload.NORMALISED_FIELDS`), so
they ignore case and spacing and keys match their enharmonics. Every condition of
:meth:`SearchFilter.conditions` names a real, indexed payload field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from timbre.store.payload import (
    DIRS_FIELD,
    FACT_SOURCES,
    KINDS,
    NORMALISED_FIELDS,
    normalise_value,
    normalize_dir,
)


@dataclass(frozen=True)
class MatchAny:
    """The payload field (a value or a list of values) holds at least one of ``values``."""

    field: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Range:
    """The numeric payload field lies within the bounds given (a None bound is open): ``gte``
    and ``lte`` inclusive, ``gt`` and ``lt`` exclusive, as Qdrant's Range has them."""

    field: str
    gte: float | None
    lte: float | None
    gt: float | None = None
    lt: float | None = None


Condition = MatchAny | Range

KEYWORD_FIELDS = (
    "genre",
    "instrument",
    "kind",
    "key",
    "pack",
    "tags",
    "category",
    "auto_tags",
    "bpm_source",
    "key_source",
)
"""The keyword fields a filter matches (any of their values); the API's filter takes the same."""
_RANGES = (("bpm", "bpm_min", "bpm_max"), ("duration_s", "duration_min_s", "duration_max_s"))
_EXCLUSIVE = {
    "bpm": ("bpm_min_exclusive", "bpm_max_exclusive"),
    "duration_s": ("duration_min_exclusive", "duration_max_exclusive"),
}


class SearchFilter(BaseModel):
    """Filter of a search, count or scroll (every field optional).

    Keyword fields match any of their values (case-insensitive, keys also enharmonically);
    ``bpm_source`` / ``key_source`` say how the value was obtained (``tags``, ``name``,
    ``audio``). Range bounds are inclusive unless their ``*_exclusive`` flag is set (Qdrant's
    gt/lt). ``path_prefix``: some path of the point lies under one of these directories.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    genre: tuple[str, ...] | None = None
    instrument: tuple[str, ...] | None = None
    kind: tuple[str, ...] | None = None
    key: tuple[str, ...] | None = None
    pack: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    category: tuple[str, ...] | None = None
    auto_tags: tuple[str, ...] | None = None
    bpm_source: tuple[str, ...] | None = None
    key_source: tuple[str, ...] | None = None
    bpm_min: float | None = Field(default=None, ge=0)
    bpm_max: float | None = Field(default=None, ge=0)
    duration_min_s: float | None = Field(default=None, ge=0)
    duration_max_s: float | None = Field(default=None, ge=0)
    bpm_min_exclusive: bool = False
    bpm_max_exclusive: bool = False
    duration_min_exclusive: bool = False
    duration_max_exclusive: bool = False
    path_prefix: tuple[str, ...] | None = None

    @field_validator(*KEYWORD_FIELDS, "path_prefix", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list | tuple | set | frozenset):
            return tuple(value) or None  # an empty list constrains nothing
        return value

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for kind in value or ():
            if kind not in KINDS:
                raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        return value

    @field_validator("bpm_source", "key_source")
    @classmethod
    def _known_source(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for source in value or ():
            if source not in FACT_SOURCES:
                raise ValueError(f"a fact source is one of {FACT_SOURCES}, not {source!r}")
        return value

    @field_validator("path_prefix")
    @classmethod
    def _normalize_prefixes(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return tuple(normalize_dir(p) for p in value) if value else None

    @model_validator(mode="after")
    def _ordered_ranges(self) -> SearchFilter:
        for field, low, high in _RANGES:
            lo, hi = getattr(self, low), getattr(self, high)
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"{low} ({lo}) is above {high} ({hi}) for {field}")
            if lo is not None and lo == hi and any(getattr(self, f) for f in _EXCLUSIVE[field]):
                raise ValueError(f"an exclusive bound equal to the other matches nothing: {field}")
        return self

    def conditions(self) -> list[Condition]:
        """The filter as a conjunction of conditions (empty = no filter)."""
        out: list[Condition] = []
        for field in KEYWORD_FIELDS:
            values = getattr(self, field)
            if values is None:
                continue
            companion = NORMALISED_FIELDS.get(field)
            if companion is None:
                out.append(MatchAny(field, values))
            else:
                folded = dict.fromkeys(normalise_value(field, v) for v in values)
                out.append(MatchAny(companion, tuple(folded)))
        if self.path_prefix is not None:
            out.append(MatchAny(DIRS_FIELD, self.path_prefix))
        for field, low, high in _RANGES:
            lo, hi = getattr(self, low), getattr(self, high)
            lo_open, hi_open = (getattr(self, f) for f in _EXCLUSIVE[field])
            if lo is not None or hi is not None:
                out.append(
                    Range(
                        field,
                        gte=None if lo_open else lo,
                        lte=None if hi_open else hi,
                        gt=lo if lo_open else None,
                        lt=hi if hi_open else None,
                    )
                )
        return out

    @property
    def is_empty(self) -> bool:
        return not self.conditions()


class AllOf(SearchFilter):
    """Several filters that must all match: their conditions joined into one conjunction.

    Merging field by field would be wrong for list fields (``tags`` any-of A *and* any-of B is
    not any-of A ∩ B) and for values that match case-insensitively or enharmonically, so the
    parts keep their own conditions and every engine sees them all.
    """

    parts: tuple[SearchFilter, ...] = ()

    def conditions(self) -> list[Condition]:
        return [c for part in self.parts for c in part.conditions()]


def conjoin(*filters: SearchFilter | None) -> SearchFilter | None:
    """The filter that matches what every one of ``filters`` matches (None or empty ones
    ignored), e.g. a palette's shared context and one slot's own filter."""
    parts = tuple(f for f in filters if f is not None and not f.is_empty)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else AllOf(parts=parts)
