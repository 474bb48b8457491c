"""Favourites and collections as the API shows them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.search import HitOut
from timbre.collections_db import HIDDEN_CLASS

_NOT_IN_NAMES = HIDDEN_CLASS + r"/\\"
_SPACES = r" \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NAME_PATTERN = rf"^[^{_NOT_IN_NAMES}]*[^{_NOT_IN_NAMES}{_SPACES}][^{_NOT_IN_NAMES}]*$"
"""A collection name (timbre.collections_db.check_name): no slashes, no control, invisible or
direction-changing characters, something besides white space (names are trimmed). Names
become folder and zip names. Windows device names (CON...) are refused too, which a pattern
the validator runs cannot say (it has no lookahead)."""
NAME_MAX_CHARS = 64
MAX_IDS = 500
"""Most ids one request adds or asks about."""


class CollectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(
        max_length=NAME_MAX_CHARS, pattern=NAME_PATTERN, examples=["Kicks for the EP"]
    )


class CollectionIdsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[str] = Field(min_length=1, max_length=MAX_IDS, description="sample ids (UUIDs)")


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
