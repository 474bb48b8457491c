"""The metadata filter of every search, as JSON, and its ranges."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict

from timbre.musickey import normalize_key
from timbre.store import SearchFilter
from timbre.store.filters import KEYWORD_FIELDS

# "MIN-MAX" with either side open: the one pattern both the schema and the validator use.
_NUMBER = r"\d{1,12}(\.\d{1,12})?"
RANGE_TEXT_PATTERN = rf"^\s*({_NUMBER}\s*-\s*({_NUMBER})?|-\s*{_NUMBER})\s*$"
_RANGE_TEXT = re.compile(RANGE_TEXT_PATTERN)


def _not_a_bool(value: Any) -> Any:
    # pydantic reads true/false as 1/0 where a number is wanted; a client sending a boolean
    # there has made a mistake the schema (type: integer/number) already calls invalid.
    if isinstance(value, bool):
        raise ValueError("expected a number, not true or false")
    return value


NOT_A_BOOL = BeforeValidator(_not_a_bool)
"""Put after a number's constraints in ``Annotated`` (before them, the schema loses its
``minimum``/``maximum``)."""


# Strict: a JSON number, neither a string ("120") nor a boolean, as the schema says.
Bound = Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)] | None

ServerPath = Annotated[str, Field(json_schema_extra={"pattern": "^[^\\x00]*$"})]
"""A path on the server. The schema says it holds no NUL byte; the service refuses one with
its own message (``InvalidRequestError``), the same from every route."""

_LOWER, _UPPER = ("min", "gte", "gt"), ("max", "lte", "lt")
# "Each bound once", as JSON Schema says it: no two spellings of one side together.
_EACH_BOUND_ONCE: JsonDict = {
    "not": {
        "anyOf": [
            {"required": [a, b]}
            for side in (_LOWER, _UPPER)
            for i, a in enumerate(side)
            for b in side[i + 1 :]
        ]
    }
}


class RangeIn(BaseModel):
    """A numeric range; either bound may be left open.

    ``min``/``max`` are inclusive; Qdrant's own spelling works too: ``gte``/``lte`` (inclusive)
    and ``gt``/``lt`` (exclusive). Give each bound once.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_EACH_BOUND_ONCE)
    min: Bound = Field(default=None, description="inclusive lower bound")
    max: Bound = Field(default=None, description="inclusive upper bound")
    gte: Bound = Field(default=None, description="inclusive lower bound (Qdrant)")
    lte: Bound = Field(default=None, description="inclusive upper bound (Qdrant)")
    gt: Bound = Field(default=None, description="exclusive lower bound (Qdrant)")
    lt: Bound = Field(default=None, description="exclusive upper bound (Qdrant)")

    @model_validator(mode="after")
    def _ordered(self) -> RangeIn:
        for side, names in (("lower", _LOWER), ("upper", _UPPER)):
            given = [n for n in names if n in self.model_fields_set]  # null too: open, but given
            if len(given) > 1:
                raise ValueError(f"give the {side} bound once, not as {' and '.join(given)}")
        (low, low_open), (high, high_open) = self.low, self.high
        if low is not None and high is not None:
            if low > high:
                raise ValueError("the lower bound must not exceed the upper bound")
            if low == high and (low_open or high_open):
                raise ValueError("an exclusive bound equal to the other bound matches nothing")
        return self

    @property
    def low(self) -> tuple[float | None, bool]:
        """The lower bound and whether it is exclusive."""
        if self.gt is not None:
            return self.gt, True
        return (self.min if self.min is not None else self.gte), False

    @property
    def high(self) -> tuple[float | None, bool]:
        """The upper bound and whether it is exclusive."""
        if self.lt is not None:
            return self.lt, True
        return (self.max if self.max is not None else self.lte), False


def _range(value: Any) -> Any:
    """Accept ``"120-130"``, ``"120-"``, ``125`` (exact) or ``{"min": .., "gt": .., ...}``."""
    if isinstance(value, str):
        if not _RANGE_TEXT.match(value):
            raise ValueError("use 'MIN-MAX', e.g. '120-130'")
        low, _, high = value.strip().partition("-")
        return {
            "min": float(low) if low.strip() else None,
            "max": float(high) if high.strip() else None,
        }
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"min": float(value), "max": float(value)}
    return value


# The forms _range accepts besides the object, for the schema (JSON Schema cannot say that the
# lower bound must not exceed the upper one; the validators refuse that with a 422).
_RANGE_FORMS = [{"type": "string", "pattern": RANGE_TEXT_PATTERN}, {"type": "number", "minimum": 0}]

# The key spellings normalize_key reads, for the schema (the validator still decides).
KEY_PATTERN = (
    r"^\s*[A-Ga-g](#|b|♯|♭|sharp|flat)?\s?"
    r"([Mm][Ii][Nn]([Oo][Rr])?|[Mm][Aa][Jj]([Oo][Rr])?|m|M)?\s*$"
)
KeyText = Annotated[str, WithJsonSchema({"type": "string", "pattern": KEY_PATTERN})]


def document_forms(schema: dict[str, Any]) -> None:
    """Add the text and number forms of the ranges to FilterIn's schema."""
    for name in ("bpm", "duration_s"):
        prop = schema["properties"][name]
        branches = prop.setdefault("anyOf", [])
        branches[:0] = _RANGE_FORMS


FactSource = Literal["tags", "name", "audio"]


class FilterIn(BaseModel):
    """Metadata filter: all given fields must match; a list means any of its values.

    Keyword fields match case-insensitively (``Techno`` = ``techno``); keys match their
    enharmonic spelling (``A#m`` = ``Bbm``).
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=document_forms)
    genre: str | list[str] | None = None
    instrument: str | list[str] | None = None
    kind: Literal["one_shot", "loop"] | list[Literal["one_shot", "loop"]] | None = None
    key: KeyText | list[KeyText] | None = Field(
        default=None, description="e.g. 'Am', 'F# minor', 'Bb'"
    )
    pack: str | list[str] | None = None
    tags: list[str] | None = Field(default=None, description="any of these tags")
    category: str | list[str] | None = Field(default=None, description="e.g. 'kick', 'pad'")
    auto_tags: list[str] | None = Field(default=None, description="any of these auto tags")
    bpm_source: FactSource | list[FactSource] | None = Field(
        default=None, description="how the BPM was obtained: tags, name or audio"
    )
    key_source: FactSource | list[FactSource] | None = Field(
        default=None, description="how the key was obtained: tags, name or audio"
    )
    bpm: RangeIn | None = Field(
        default=None, description="'120-130', {min, max} or {gte, lte, gt, lt}"
    )
    duration_s: RangeIn | None = Field(
        default=None, description="seconds: '0-2', {min, max} or {gte, lte, gt, lt}"
    )
    path_prefix: str | list[str] | None = Field(default=None, description="a folder of the library")

    @field_validator("bpm", "duration_s", mode="before")
    @classmethod
    def _ranges(cls, value: Any) -> Any:
        return _range(value)

    @field_validator("key")
    @classmethod
    def _canonical_keys(cls, value: str | list[str] | None) -> list[str] | None:
        if value is None:
            return None
        out = []
        for text in [value] if isinstance(value, str) else value:
            key = normalize_key(text)
            if key is None:
                raise ValueError(f"{text!r} is not a musical key (try 'Am', 'F#', 'C major')")
            out.append(key)
        return out

    def to_filter(self) -> SearchFilter | None:
        data: dict[str, Any] = {
            name: getattr(self, name) for name in (*KEYWORD_FIELDS, "path_prefix")
        }
        for name, prefix, unit in (("bpm", "bpm", ""), ("duration_s", "duration", "_s")):
            bounds: RangeIn | None = getattr(self, name)
            if bounds is None:
                continue
            (low, low_open), (high, high_open) = bounds.low, bounds.high
            data[f"{prefix}_min{unit}"], data[f"{prefix}_max{unit}"] = low, high
            data[f"{prefix}_min_exclusive"] = low_open or None
            data[f"{prefix}_max_exclusive"] = high_open or None
        search_filter = SearchFilter(**{k: v for k, v in data.items() if v is not None})
        return None if search_filter.is_empty else search_filter
