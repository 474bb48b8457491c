"""The project a producer is making (a request's ``context``: tempo and key) and how each hit
fits it (``fit``); the rules are :mod:`timbre.fit`'s and :mod:`timbre.search.fitting`'s."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from app.schemas.filters import NOT_A_BOOL, FilterIn, KeyText, document_forms
from timbre.fit import MAX_BPM, KeyRelation, ProjectContext
from timbre.musickey import normalize_key
from timbre.search.fitting import FitQuery, SortBy

# Strict: a JSON number, never a string ("124", "NaN") or a boolean; finite (no raw NaN).
Bpm = Annotated[float, Field(gt=0, le=MAX_BPM, allow_inf_nan=False, strict=True), NOT_A_BOOL]
TolerancePct = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False, strict=True), NOT_A_BOOL]

FIT_MEANING = (
    "a sample fits when it needs at most tolerance_pct of time-stretch to play at the project's "
    "tempo (half and double time count) and its key is the project's, its relative or a fifth "
    "away (dominant, subdominant); one-shots and samples without a tempo or key are never "
    "held back by what they lack"
)
"""What ``fit`` means, in the words the schema and the MCP tools use."""


def _canonical_key(value: str | None) -> str | None:
    if value is None:
        return None
    key = normalize_key(value)
    if key is None:
        raise ValueError(f"{value!r} is not a musical key (try 'Am', 'F#', 'C major')")
    return key


# "A bpm, a key or both" in JSON Schema terms (a null counts as not given), so that the schema
# accepts no context the model refuses.
_BPM_OR_KEY: dict[str, Any] = {
    "anyOf": [
        {"required": ["bpm"], "properties": {"bpm": {"type": "number"}}},
        {"required": ["key"], "properties": {"key": {"type": "string"}}},
    ]
}


class ProjectIn(BaseModel):
    """The project's tempo and key (one or both); every hit then says how it fits (``fit``).

    A sample fits when it needs at most ``tolerance_pct`` of time-stretch (half and double time
    count) and its key is the project's, its relative or a fifth away; a missing tempo (one-shots)
    or key never counts against it. ``sort: "fit"`` puts fitting hits first, each group by score;
    ``only_fitting`` drops the rest. Both rank a pool of candidates larger than the page.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_BPM_OR_KEY)
    bpm: Bpm | None = Field(
        default=None, description=f"the project's tempo, above 0 and at most {MAX_BPM:g}"
    )
    key: KeyText | None = Field(
        default=None, description="the project's key, e.g. 'Am', 'F# minor', 'Bb'"
    )
    tolerance_pct: TolerancePct | None = Field(
        default=None,
        description="most time-stretch (percent) that still fits; default from the settings "
        "(fit.tempo_tolerance_pct, 8: where stretching starts to be heard on drums)",
    )
    sort: SortBy = Field(
        default="score", description="'score' (as found) or 'fit': fitting hits first"
    )
    only_fitting: bool = Field(
        default=False, strict=True, description="leave out the hits that do not fit"
    )

    @field_validator("key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        return _canonical_key(value)

    @model_validator(mode="after")
    def _something(self) -> ProjectIn:
        if self.bpm is None and self.key is None:
            raise ValueError("a project context needs a bpm, a key or both")
        return self

    def query(self, default_tolerance_pct: float) -> FitQuery:
        """The fit to apply, the settings' tolerance filling in a missing one."""
        tolerance = default_tolerance_pct if self.tolerance_pct is None else self.tolerance_pct
        project = ProjectContext.of(self.bpm, self.key, tolerance)
        return FitQuery(project, self.sort, self.only_fitting)


class FitOut(BaseModel):
    """How a hit fits the request's project (present only when a ``context`` was given)."""

    fits: bool = Field(description=FIT_MEANING)
    stretch_pct: float | None = Field(
        default=None,
        description="signed time-stretch to the project's tempo in percent (+ = faster), "
        "after tempo_multiple; null: no tempo relation (a one-shot, or no known tempo)",
    )
    tempo_multiple: float | None = Field(
        default=None, description="1: heard as it is, 2: at double time, 0.5: at half time"
    )
    key_relation: KeyRelation | None = Field(
        default=None,
        description="the sample's key to the project's; same, relative, dominant and "
        "subdominant fit; null: the sample or the project has no key",
    )
    semitones: int | None = Field(
        default=None,
        description="transposition (-6..+5) onto the project's key, or its relative when the "
        "modes differ",
    )
    audio_url: str | None = Field(
        default=None,
        description="the sample stretched and transposed to the project (matched audition); "
        "null when it needs neither, or no service renders it",
    )


def _project_forms(schema: dict[str, Any]) -> None:
    """FilterIn's schema, but a single number bpm is a project's tempo: above 0, at most 999."""
    document_forms(schema)
    bpm = schema["properties"]["bpm"]
    number = {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_BPM}
    # New branches, not edits: FilterIn's schema shares its branch dicts.
    bpm["anyOf"] = [number if b.get("type") == "number" else b for b in bpm["anyOf"]]
    bpm["description"] = (
        "one number (124): the project's tempo, fitting samples first; a range filters: "
        "'120-130', {min, max} or {gte, lte, gt, lt}"
    )
    schema["properties"]["key"]["description"] = (
        "one key ('Am'): the project's key, fitting samples first; a list of keys filters"
    )


class PaletteContextIn(FilterIn):
    """A filter every slot must match, and the project: a single number ``bpm`` and a single
    ``key`` are the project's tempo and key (each hit says how it fits, fitting samples come
    first in each slot; not a filter); a ``bpm`` range (``"120-128"``, ``{min, max}``) and a list
    of keys filter as in any search."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_project_forms)
    _project_bpm: float | None = PrivateAttr(default=None)
    _project_key: str | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _split_project(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if not isinstance(data, dict):
            return handler(data)
        bpm, key = data.get("bpm"), data.get("key")
        single_bpm = isinstance(bpm, int | float) and not isinstance(bpm, bool)
        single_key = isinstance(key, str)
        parts = _ProjectParts.model_validate(
            {"bpm": bpm if single_bpm else None, "key": key if single_key else None}
        )
        rest = {
            k: v
            for k, v in data.items()
            if not (k == "bpm" and single_bpm) and not (k == "key" and single_key)
        }
        model = handler(rest)
        model._project_bpm, model._project_key = parts.bpm, parts.key
        return model

    @model_serializer(mode="wrap")
    def _with_project(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Written back as given, so the request round-trips (the MCP's HTTP backend sends it).
        data: dict[str, Any] = handler(self)
        if self._project_bpm is not None:
            data["bpm"] = self._project_bpm
        if self._project_key is not None:
            data["key"] = self._project_key
        return data

    def project(self, default_tolerance_pct: float) -> FitQuery | None:
        """The project its single bpm and key name (fitting samples first), or None."""
        if self._project_bpm is None and self._project_key is None:
            return None
        given = ProjectIn(bpm=self._project_bpm, key=self._project_key, sort="fit")
        return given.query(default_tolerance_pct)


class _ProjectParts(BaseModel):
    """A palette context's single bpm and key, checked as a project's are."""

    bpm: Bpm | None = None
    key: KeyText | None = None

    @field_validator("key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        return _canonical_key(value)
