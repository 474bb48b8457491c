"""Waveform peaks, full item payloads, near-duplicates and folder listings, as the API shows
them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.filters import FilterIn
from app.schemas.search import HitOut, Offset, TopK


class PeaksOut(BaseModel):
    id: str
    buckets: int = Field(description="number of peaks")
    peaks: list[int] = Field(
        description="max |sample| per equal slice of the clip, 0..255 (255 = full scale)"
    )
    duration_s: float | None = None
    source: Literal["payload", "cache", "computed"]


class PayloadOut(BaseModel):
    id: str
    payload: dict[str, Any] = Field(description="every stored field of the sample")
    audio_url: str


class BrowseIn(BaseModel):
    """A listing without a query: the samples matching ``filter``, in path order (a project
    context, the query parameters ``bpm``, ``key``, ``sort``, ``only_fitting``, may list the
    fitting ones first)."""

    model_config = ConfigDict(extra="forbid")
    filter: FilterIn | None = None
    top_k: TopK | None = Field(default=None, description="samples wanted")
    offset: Offset = 0


class FolderOut(BaseModel):
    path: str
    name: str
    count: int = Field(description="samples under this folder")


class FoldersOut(BaseModel):
    under: str | None = Field(description="the folder listed; null for the top of the library")
    name: str | None = None
    parent: str | None = Field(description="one level up; null when that is the top")
    parent_name: str | None = None
    folders: list[FolderOut]
    total: int = Field(description="samples under the folder listed")


class ItemDuplicatesOut(BaseModel):
    id: str
    keep: str = Field(description="the one to keep among the sample and its near-duplicates")
    min_cosine: float = Field(description="the threshold applied (duplicates.min_cosine)")
    hits: list[HitOut] = Field(description="near-duplicates, closest first, score = cosine")
    layers: list[HitOut] = Field(
        default=[],
        description="its velocity layers or round robins in the same folder that are as close "
        "(names differing only by Soft/Hard, v1, rr2, _01...): not duplicates",
    )
