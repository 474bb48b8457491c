"""Search requests and their results."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import UploadFile
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from app.problems import parse_json
from app.schemas.filters import NOT_A_BOOL, FilterIn, ServerPath
from app.schemas.fit import FitOut, PaletteContextIn, ProjectIn
from timbre.errors import InvalidRequestError

# A query must hold some text: the pattern says so in the schema, and enforces it. \x1c-\x1f
# are whitespace to Python's str.strip (which the service applies) but not to regex engines.
# U+0085 (NEL) is whitespace to both but not to ECMA-262's \s, which clients validating the
# schema use: the pattern names it so that they refuse it too.
QueryText = Annotated[str, Field(min_length=1, max_length=2000, pattern=r"[^\s\x1c-\x1f\x85]")]
# Words to steer away from (timbre.search.steer); a query's "-word" tokens join them.
AvoidWord = Annotated[str, Field(min_length=1, max_length=200, pattern=r"[^\s\x1c-\x1f\x85]")]
AVOID_DOC = "words to steer away from, e.g. ['distorted', 'lo fi'] (also '-word' in the query)"
# Numbers refuse true/false (which pydantic would read as 1/0), as their schema types say.
TopK = Annotated[int, Field(ge=1), NOT_A_BOOL]
Offset = Annotated[int, Field(ge=0), NOT_A_BOOL]
Alpha = Annotated[float, Field(ge=0.0, le=1.0), NOT_A_BOOL]


class Paging(BaseModel):
    top_k: TopK | None = Field(default=None, description="results wanted (default from settings)")
    offset: Offset = Field(default=0, description="results to skip (paging)")


CONTEXT_DESCRIPTION = (
    "the project's tempo and key: each hit says how it fits (fit); sort 'fit' puts fitting "
    "hits first, only_fitting drops the rest"
)


class TextSearchIn(Paging):
    model_config = ConfigDict(extra="forbid")
    query: QueryText = Field(examples=["punchy techno kick"])
    avoid: list[AvoidWord] | None = Field(default=None, max_length=64, description=AVOID_DOC)
    filter: FilterIn | None = None
    context: ProjectIn | None = Field(default=None, description=CONTEXT_DESCRIPTION)


# "Exactly one of id or path" in JSON Schema terms, so that the schema accepts no body the
# model refuses (a null counts as not given).
_ONE_REFERENCE: JsonDict = {
    "oneOf": [
        {"required": ["id"], "properties": {"id": {"type": "string"}}},
        {"required": ["path"], "properties": {"path": {"type": "string"}}},
    ]
}


class AudioSearchIn(Paging):
    """A reference sound by indexed ``id`` or by server ``path`` (uploads use multipart)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_ONE_REFERENCE)
    id: str | None = Field(default=None, description="an indexed item's id")
    path: ServerPath | None = Field(default=None, description="a file inside the library roots")
    filter: FilterIn | None = None
    context: ProjectIn | None = Field(default=None, description=CONTEXT_DESCRIPTION)

    @model_validator(mode="after")
    def _one_reference(self) -> AudioSearchIn:
        if (self.id is None) == (self.path is None):
            raise ValueError("give exactly one of id or path (or upload a file)")
        return self


class HybridSearchIn(AudioSearchIn):
    query: QueryText
    alpha: Alpha = Field(default=0.5, description="weight of the text: 1 = text only")
    avoid: list[AvoidWord] | None = Field(default=None, max_length=64, description=AVOID_DOC)


def _no_default(schema: JsonDict) -> None:
    schema.pop("default", None)


class AudioUploadIn(Paging):
    """A multipart upload: the reference sound as ``file``, text fields, ``filter`` and
    ``context`` as JSON."""

    model_config = ConfigDict(extra="forbid")
    file: UploadFile = Field(description="an audio file (WAV, FLAC, AIFF, OGG...)")
    # No null in the schema: a form field has none (left out, it takes the default).
    top_k: TopK = Field(  # type: ignore[assignment]
        default=None,
        description="results wanted (default from settings)",
        json_schema_extra=_no_default,
    )
    filter: FilterIn | None = None
    context: ProjectIn | None = Field(default=None, description=CONTEXT_DESCRIPTION)

    @model_validator(mode="before")
    @classmethod
    def _form(cls, data: Any) -> Any:
        for name in ("id", "path"):  # the upload is the reference: a second one is a mistake
            if name in data:
                raise InvalidRequestError(f"{name}: give an uploaded file or an {name}, not both")
        for name in ("filter", "context"):
            if isinstance(data.get(name), str):
                data = {**data, name: parse_json(data[name], name)}
        return data


class HybridUploadIn(AudioUploadIn):
    query: QueryText
    alpha: Alpha = Field(default=0.5, description="weight of the text: 1 = text only")
    avoid: list[AvoidWord] | None = Field(
        default=None, max_length=64, description=AVOID_DOC + " (one form field per word)"
    )


class BatchItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slot: str | None = Field(
        default=None,
        description="a label echoed back, e.g. 'kick'; one naming an instrument the library "
        "holds (kick, snares) filters the slot on it unless a filter sets an instrument",
    )
    query: QueryText
    avoid: list[AvoidWord] | None = Field(default=None, max_length=64, description=AVOID_DOC)
    top_k: TopK | None = None
    offset: Offset = 0
    filter: FilterIn | None = None


class BatchSearchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    queries: list[BatchItemIn] = Field(min_length=1)
    distinct: bool = Field(
        default=False, strict=True, description="never return the same sample in two slots"
    )
    context: PaletteContextIn | None = Field(
        default=None,
        description="a filter every query must also match (e.g. genre, BPM range; its BPM "
        "range applies to loops, and one-shots (no tempo) pass it); a single number bpm and a "
        "single key are the project's instead: each hit says how it fits (fit) and fitting "
        "samples come first in each slot",
    )


class HitOut(BaseModel):
    id: str
    score: float | None = None
    path: str | None = None
    paths: list[str] = []
    pack: str | None = None
    genre: str | None = None
    bpm: float | None = None
    key: str | None = None
    instrument: str | None = None
    kind: str | None = None
    duration_s: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    format: str | None = None
    tags: list[str] = []
    bpm_source: str | None = Field(default=None, description="tags, name or audio")
    bpm_confidence: float | None = Field(default=None, description="0..1, audio estimates only")
    key_source: str | None = Field(default=None, description="tags, name or audio")
    key_confidence: float | None = Field(default=None, description="0..1, audio estimates only")
    kind_source: str | None = Field(
        default=None, description="how kind was decided: tags, name, audio or duration"
    )
    analysis_version: str | None = None
    category: str | None = Field(default=None, description="zero-shot from the sound")
    category_score: float | None = Field(default=None, description="cosine with the label")
    auto_tags: list[str] = Field(default=[], description="labels above the threshold")
    auto_tag_scores: dict[str, float] = {}
    labels_version: str | None = Field(
        default=None, description="vocabulary hash and text model that labelled it"
    )
    instrument_source: str | None = Field(default=None, description="'name' or 'audio'")
    content_sha256: str | None = None
    ingested_at: str | None = None
    peaks: str | None = Field(
        default=None, description="waveform: base64 of 200 uint8 peaks (timbre.audio.peaks)"
    )
    audio_url: str
    fit: FitOut | None = Field(
        default=None, description="how it fits the request's project (only with a context)"
    )


class SearchOut(BaseModel):
    engine: Literal["faiss", "qdrant"]
    took_ms: float
    query: dict[str, Any] = {}
    hits: list[HitOut]
    total: int | None = Field(
        default=None, description="samples the query could return (the filter's matches)"
    )


class EmptiedByOut(BaseModel):
    filter: str = Field(
        description="a condition, by where it came from: 'context.bpm', 'filter.instrument', "
        "'slot.instrument' (derived from the slot's name)"
    )
    value: str = Field(description="its value as given, e.g. '120-128', 'kick'")
    matches: int | None = Field(description="samples that pass the other filters without it")


class EmptySlotOut(BaseModel):
    reason: str = Field(description="one line saying why the slot is empty")
    matches: int | None = Field(
        description="samples passing every filter (when above 0, earlier slots took them)"
    )
    without: list[EmptiedByOut] = Field(description="each condition dropped in turn")


class BatchResultOut(SearchOut):
    slot: str | None = None
    notes: list[str] = Field(
        default=[],
        description="how the filters were applied: an instrument taken from the slot's name, "
        "a context BPM range that one-shots pass",
    )
    empty: EmptySlotOut | None = Field(
        default=None, description="why the slot has no hits (which filter emptied it)"
    )


class BatchOut(BaseModel):
    took_ms: float
    results: list[BatchResultOut]
