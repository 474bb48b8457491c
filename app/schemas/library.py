"""What the library holds: facet counts and near-duplicate reports."""

from __future__ import annotations

from pydantic import BaseModel, Field


class FacetValueOut(BaseModel):
    value: str = Field(description="display form, e.g. 'Techno', 'Bbm'")
    count: int = Field(description="points (matching the filter) holding this value")


class FacetsOut(BaseModel):
    facets: dict[str, list[FacetValueOut]] = Field(
        description="field -> values, most frequent first"
    )
    total: int = Field(description="points matching the filter")


class DuplicateMemberOut(BaseModel):
    id: str
    score: float = Field(description="cosine with the member kept (1 for that one)")
    path: str | None = None
    paths: list[str] = []
    duration_s: float | None = None
    format: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    pack: str | None = None


class DuplicateGroupOut(BaseModel):
    keep: str = Field(description="id of the member to keep, by keep_rule")
    min_score: float = Field(
        description="lowest cosine of a member with the one kept (never below min_cosine)"
    )
    members: list[DuplicateMemberOut]


class LayerSetOut(BaseModel):
    folder: str = Field(description="the folder holding the layers")
    sound: str = Field(description="the name without its velocity or round-robin words")
    min_score: float = Field(description="lowest cosine of a member with the first")
    members: list[DuplicateMemberOut] = Field(
        description="path order; score = cosine with the first"
    )


class DuplicatesOut(BaseModel):
    points: int = Field(description="points examined")
    groups: list[DuplicateGroupOut] = Field(description="largest first")
    duplicates: int = Field(description="members other than the ones kept")
    layers: list[LayerSetOut] = Field(
        default=[],
        description="velocity layers or round robins of one sound in one folder (names that "
        "differ only by Soft/Hard, v1, rr2, _01...): as close as duplicates, but not duplicates",
    )
    seconds: float
    rules: dict[str, float | int] = Field(description="min_cosine, duration tolerances...")
    keep_rule: str
