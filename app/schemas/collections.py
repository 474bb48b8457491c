"""Favourites and collections as the API shows them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.search import HitOut


class CollectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, examples=["Kicks for the EP"])


class CollectionIdsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[str] = Field(min_length=1, max_length=500, description="sample ids (UUIDs)")


class CollectionOut(BaseModel):
    name: str
    count: int
    created_at: str
    updated_at: str


class CollectionsOut(BaseModel):
    collections: list[CollectionOut]


class CollectionItemOut(HitOut):
    """A sample of a collection: a hit without score; ``missing`` once it left the index."""

    audio_url: str | None = None  # type: ignore[assignment]  # None for a missing item
    missing: bool = False
    added_at: str
    path_hint: str | None = Field(default=None, description="its path when it was added")


class CollectionDetailOut(CollectionOut):
    items: list[CollectionItemOut]


class MembershipsOut(BaseModel):
    memberships: dict[str, list[str]] = Field(
        description="for each asked id held by some collection, the names of those collections"
    )
