"""The metadata filter of every search, as JSON, and its ranges."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from timbre.musickey import normalize_key
from timbre.store import SearchFilter

_RANGE_TEXT = re.compile(r"^\s*(\d+(?:\.\d+)?)?\s*-\s*(\d+(?:\.\d+)?)?\s*$")


class RangeIn(BaseModel):
    """An inclusive numeric range; either bound may be left open."""

    model_config = ConfigDict(extra="forbid")
    min: float | None = Field(default=None, ge=0)
    max: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> RangeIn:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not exceed max")
        return self


def _range(value: Any) -> Any:
    """Accept ``"120-130"``, ``"120-"``, ``125`` (exact) or ``{"min": .., "max": ..}``."""
    if isinstance(value, str):
        match = _RANGE_TEXT.match(value)
        if not match or not any(match.groups()):
            raise ValueError("use 'MIN-MAX', e.g. '120-130'")
        low, high = match.groups()
        return {"min": float(low) if low else None, "max": float(high) if high else None}
    if isinstance(value, int | float):
        return {"min": float(value), "max": float(value)}
    return value


class FilterIn(BaseModel):
    """Metadata filter: all given fields must match; a list means any of its values.

    Keyword fields match case-insensitively (``Techno`` = ``techno``); keys match their
    enharmonic spelling (``A#m`` = ``Bbm``).
    """

    model_config = ConfigDict(extra="forbid")
    genre: str | list[str] | None = None
    instrument: str | list[str] | None = None
    kind: Literal["one_shot", "loop"] | list[Literal["one_shot", "loop"]] | None = None
    key: str | list[str] | None = Field(default=None, description="e.g. 'Am', 'F# minor', 'Bb'")
    pack: str | list[str] | None = None
    tags: list[str] | None = Field(default=None, description="any of these tags")
    category: str | list[str] | None = Field(default=None, description="e.g. 'kick', 'pad'")
    auto_tags: list[str] | None = Field(default=None, description="any of these auto tags")
    bpm: RangeIn | None = Field(default=None, description="'120-130' or {min, max}")
    duration_s: RangeIn | None = Field(default=None, description="seconds, '0-2' or {min, max}")
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
            name: getattr(self, name)
            for name in (
                "genre",
                "instrument",
                "kind",
                "key",
                "pack",
                "tags",
                "category",
                "auto_tags",
                "path_prefix",
            )
        }
        if self.bpm:
            data.update(bpm_min=self.bpm.min, bpm_max=self.bpm.max)
        if self.duration_s:
            data.update(duration_min_s=self.duration_s.min, duration_max_s=self.duration_s.max)
        search_filter = SearchFilter(**{k: v for k, v in data.items() if v is not None})
        return None if search_filter.is_empty else search_filter
