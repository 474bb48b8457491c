"""The MCP tools' inputs and results, made of the HTTP API's own models: a tool takes an HTTP
request model, or a small model with the HTTP fields' types that turns into one (so the HTTP
rules apply to both doors); results are HTTP hits, whole or trimmed (:class:`SampleBrief`)."""

from __future__ import annotations

from copy import copy
from pathlib import PurePath
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.schemas.collections import (
    MAX_IDS,
    NAME_MAX_CHARS,
    NAME_PATTERN,
    CollectionOut,
)
from app.schemas.filters import FilterIn
from app.schemas.fit import FitOut, PaletteContextIn, ProjectIn
from app.schemas.recommend import ItemId, RecommendIn
from app.schemas.search import (
    AVOID_DOC,
    Alpha,
    AudioSearchIn,
    AvoidWord,
    BatchItemIn,
    BatchOut,
    BatchResultOut,
    BatchSearchIn,
    EmptySlotOut,
    HitOut,
    HybridSearchIn,
    Paging,
    QueryText,
    SearchOut,
)
from timbre.search.steer import MAX_EXAMPLES, parse_text

FAVOURITES = "favourites"


def _as_in_hit(field: str) -> Any:
    """The field of :class:`HitOut` itself (type, default, description), so the two cannot drift."""
    return copy(HitOut.model_fields[field])


def _as_in_batch(field: str) -> Any:
    """The field of a batch result (:class:`BatchResultOut`), as :func:`_as_in_hit` does."""
    return copy(BatchResultOut.model_fields[field])


class SampleBrief(BaseModel):
    """One sample as a search result: what to decide on, what to show a person, where the
    file is (``path`` and every copy in ``paths``, on the machine where it was indexed, for an
    assistant beside a DAW), and where each fact came from (``*_source``: the file's tags, its
    name or the audio), so the assistant can explain its pick."""

    id: str = _as_in_hit("id")
    name: str = Field(description="the file name")
    path: str | None = _as_in_hit("path")
    paths: list[str] = _as_in_hit("paths")
    pack: str | None = _as_in_hit("pack")
    category: str | None = _as_in_hit("category")
    instrument: str | None = _as_in_hit("instrument")
    instrument_source: str | None = _as_in_hit("instrument_source")
    kind: str | None = _as_in_hit("kind")
    bpm: float | None = _as_in_hit("bpm")
    bpm_source: str | None = _as_in_hit("bpm_source")
    key: str | None = _as_in_hit("key")
    key_source: str | None = _as_in_hit("key_source")
    duration_s: float | None = _as_in_hit("duration_s")
    score: float | None = _as_in_hit("score")
    audio_url: str = _as_in_hit("audio_url")
    fit: FitOut | None = _as_in_hit("fit")

    @classmethod
    def of(cls, hit: HitOut) -> SampleBrief:
        data = hit.model_dump()
        return cls(
            name=PurePath(hit.path).name if hit.path else hit.id,
            **{k: v for k, v in data.items() if k in cls.model_fields},
        )


class SamplesOut(BaseModel):
    hits: list[SampleBrief]

    @classmethod
    def of(cls, result: SearchOut) -> SamplesOut:
        return cls(hits=[SampleBrief.of(h) for h in result.hits])


class SimilarIn(Paging):
    """More like an indexed sample, optionally steered by a description (hybrid), and away
    from other samples (``unlike``) and words (``avoid``, or ``-word`` in the query): then a
    recommend query, where the sample and the query weigh alike (``alpha`` does not apply)."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(description="an indexed sample's id, e.g. from search_samples")
    query: QueryText | None = Field(
        default=None, description="a description to steer by, e.g. 'darker'"
    )
    alpha: Alpha = Field(default=0.5, description="weight of the text: 1 = text only")
    unlike: list[ItemId] | None = Field(
        default=None,
        max_length=MAX_EXAMPLES,
        description="ids of samples to move away from, e.g. hits the user rejected",
    )
    avoid: list[AvoidWord] | None = Field(
        default=None, max_length=MAX_EXAMPLES, description=AVOID_DOC
    )
    filter: FilterIn | None = None
    context: ProjectIn | None = Field(
        default=None, description=copy(AudioSearchIn.model_fields["context"].description)
    )

    @property
    def steered(self) -> bool:
        """Away from samples or words: a recommend query."""
        excluded = self.query is not None and parse_text(self.query, require_text=False).avoid
        return bool(self.unlike or self.avoid or excluded)

    @model_validator(mode="after")
    def _alpha_without_steering(self) -> SimilarIn:
        if "alpha" in self.model_fields_set and self.steered:
            raise ValueError(
                "alpha applies without unlike and avoid (and '-word' in the query); with "
                "them the sample and the query weigh alike: leave alpha out"
            )
        return self

    def to_http(self) -> AudioSearchIn | RecommendIn:
        """The HTTP API's request for the same search (hybrid when a query is given,
        recommend when steered away from samples or words)."""
        if self.steered:
            return RecommendIn(
                positive=[self.id],
                negative=self.unlike or [],
                query=self.query,
                avoid=self.avoid,
                top_k=self.top_k,
                offset=self.offset,
                filter=self.filter,
                context=self.context,
            )
        if self.query is None:
            return AudioSearchIn(
                id=self.id,
                top_k=self.top_k,
                offset=self.offset,
                filter=self.filter,
                context=self.context,
            )
        return HybridSearchIn(
            id=self.id,
            top_k=self.top_k,
            offset=self.offset,
            filter=self.filter,
            context=self.context,
            query=self.query,
            alpha=self.alpha,
        )


class PaletteIn(BaseModel):
    """Every slot of a palette in one call."""

    model_config = ConfigDict(extra="forbid")
    slots: list[BatchItemIn] = Field(
        min_length=1, description="one per slot: {slot: 'kick', query: 'punchy kick', ...}"
    )
    distinct: bool = Field(
        default=True, strict=True, description="never return the same sample in two slots"
    )
    context: PaletteContextIn | None = Field(
        default=None,
        description="what every slot shares, e.g. {genre: 'techno', bpm: 124, key: 'Am'}: a "
        "single bpm number and a single key are the track's tempo and key (not filters: each "
        "hit says how it fits, and fitting samples come first in every slot); a bpm range "
        "('120-128', it applies to loops, one-shots pass it), a list of keys and every other "
        "field filter every slot",
    )

    def to_http(self) -> BatchSearchIn:
        return BatchSearchIn(queries=self.slots, distinct=self.distinct, context=self.context)


class PaletteSlotOut(BaseModel):
    slot: str | None = None
    query: str
    hits: list[SampleBrief]
    notes: list[str] = _as_in_batch("notes")
    empty: EmptySlotOut | None = _as_in_batch("empty")


class PaletteOut(BaseModel):
    slots: list[PaletteSlotOut]

    @classmethod
    def of(cls, asked: PaletteIn, result: BatchOut) -> PaletteOut:
        return cls(
            slots=[
                PaletteSlotOut(
                    slot=item.slot,
                    query=item.query,
                    hits=[SampleBrief.of(h) for h in out.hits],
                    notes=out.notes,
                    empty=out.empty,
                )
                for item, out in zip(asked.slots, result.results, strict=True)
            ]
        )


class SampleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(description="an indexed sample's id")


class NoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OverviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filter: FilterIn | None = Field(default=None, description="count only what matches")


# A collection name and an id list take the HTTP API's limits (app/schemas/collections.py).
CollectionName = Annotated[str, Field(max_length=NAME_MAX_CHARS, pattern=NAME_PATTERN)]


class AddToCollectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[str] = Field(min_length=1, max_length=MAX_IDS, description="sample ids to add")
    collection: CollectionName = Field(
        default=FAVOURITES, description="a collection name (created when new)"
    )


class CollectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    collection: CollectionName = Field(default=FAVOURITES, description="a collection name")


class CollectionItemsOut(CollectionOut):
    items: list[HitOut]


class CollectionBriefOut(CollectionOut):
    items: list[SampleBrief]

    @classmethod
    def of(cls, full: CollectionItemsOut) -> CollectionBriefOut:
        data = full.model_dump(exclude={"items"})
        return cls(**data, items=[SampleBrief.of(h) for h in full.items])
