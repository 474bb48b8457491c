"""Kits of 8 or 16 pads as the API takes and shows them."""

from __future__ import annotations

from copy import copy
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from app.schemas.collections import NAME_MAX_CHARS, NAME_PATTERN
from app.schemas.fit import FitOut, ProjectIn
from app.schemas.mcp import SampleBrief
from app.schemas.search import HitOut
from timbre.search.kit_slots import MAX_SLOT_CHARS

KitName = Annotated[
    str,
    Field(
        max_length=NAME_MAX_CHARS,
        pattern=NAME_PATTERN,
        description="a kit name (the rules of collection names)",
        examples=["Techno kit"],
    ),
]
_CONTROL = r"\x00-\x1f\x7f"
_SPACES = r" \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
SLOT_PATTERN = rf"^[^{_CONTROL}]*[^\s{_CONTROL}{_SPACES}][^{_CONTROL}]*$"
"""A slot label (timbre.search.kits.check_slot): no control characters, something besides
white space."""
SlotText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_SLOT_CHARS,
        pattern=SLOT_PATTERN,
        description="a slot label, searched as text: 'kick', 'closed hat', '808 snare'",
    ),
]
PadCount = Annotated[Literal[8, 16], Field(description="8 or 16 pads")]


_ID_OR_SLOT: JsonDict = {
    "anyOf": [
        {"required": ["id"], "properties": {"id": {"type": "string"}}},
        {"required": ["slot"], "properties": {"slot": {"type": "string"}}},
    ]
}


def _slots_within(default_pads: int) -> JsonDict:
    """At most as many slots as pads, which a field's own schema cannot say."""
    other = 16 if default_pads == 8 else 8
    return {
        "if": {"required": ["pads"], "properties": {"pads": {"const": other}}},
        "then": {"properties": {"slots": {"anyOf": [{"maxItems": other}, {"type": "null"}]}}},
        "else": {
            "properties": {"slots": {"anyOf": [{"maxItems": default_pads}, {"type": "null"}]}}
        },
    }


class KitPreviewIn(BaseModel):
    """A kit to fill without saving it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_slots_within(16))
    pads: PadCount = 16
    slots: list[SlotText] | None = Field(
        default=None,
        max_length=16,
        description="a label per pad, in order; missing ones take the defaults",
    )
    context: ProjectIn | None = None


class KitIn(KitPreviewIn):
    name: KitName
    fill: bool = Field(
        default=True, strict=True, description="fill the pads now (distinct, fitting samples)"
    )


class PadIn(BaseModel):
    """A sample for a pad (drop a result on it), a new slot label, or both."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_ID_OR_SLOT)
    id: str | None = Field(default=None, description="an indexed sample's id")
    slot: SlotText | None = None

    @model_validator(mode="after")
    def _something(self) -> PadIn:
        if self.id is None and self.slot is None:
            raise ValueError("give an id, a slot, or both")
        return self


class LockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    locked: bool = Field(strict=True, description="kept by fill and swap-all when true")


class PadOut(BaseModel):
    index: int = Field(description="1 to 8 or 16")
    midi_note: int = Field(description="the note it plays on export: 35 + index (pad 1 = 36)")
    slot: str
    id: str | None = Field(default=None, description="its sample (null: empty)")
    locked: bool
    missing: bool = Field(
        description="its sample is no longer indexed, or its file is gone (export skips it)"
    )
    hit: HitOut | None = Field(default=None, description="its sample (null: empty or unindexed)")
    fit: FitOut | None = Field(default=None, description="null without a project context")
    note: str | None = Field(
        default=None, description="how it was chosen, e.g. that nothing fitting was found"
    )
    path_hint: str | None = Field(default=None, description="its path when it was chosen")


class KitContextOut(BaseModel):
    bpm: float | None = None
    key: str | None = None
    tolerance_pct: float
    only_fitting: bool = False


class KitSummaryOut(BaseModel):
    name: str
    size: int = Field(description="8 or 16 pads")
    filled: int = Field(description="pads holding a sample")
    created_at: str
    updated_at: str


class KitsOut(BaseModel):
    kits: list[KitSummaryOut]


class KitOut(BaseModel):
    name: str | None = Field(description="null for a kit filled without being saved")
    size: int
    pads: list[PadOut]
    context: KitContextOut | None = None
    created_at: str | None = None
    updated_at: str | None = None


# -- the MCP tool build_kit: the HTTP models above, results trimmed as other tools trim hits --


class BuildKitIn(KitPreviewIn):
    """A kit for a track: its slots, pad count and project; saved when named."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_slots_within(8))

    pads: PadCount = 8
    name: KitName | None = Field(default=None, description="save the kit under this name")


def _as_in_pad(field: str) -> Any:
    """The field of :class:`PadOut` itself, so that the two cannot drift."""
    return copy(PadOut.model_fields[field])


class KitPadBrief(BaseModel):
    index: int = _as_in_pad("index")
    midi_note: int = _as_in_pad("midi_note")
    slot: str
    sample: SampleBrief | None = Field(default=None, description="null: nothing found for it")
    fit: FitOut | None = _as_in_pad("fit")
    note: str | None = _as_in_pad("note")


class BuildKitOut(BaseModel):
    name: str | None = Field(default=None, description="where it was saved (null: not saved)")
    context: KitContextOut | None = None
    pads: list[KitPadBrief]

    @classmethod
    def of(cls, kit: KitOut) -> BuildKitOut:
        return cls(
            name=kit.name,
            context=kit.context,
            pads=[
                KitPadBrief(
                    index=p.index,
                    midi_note=p.midi_note,
                    slot=p.slot,
                    sample=SampleBrief.of(p.hit) if p.hit is not None else None,
                    fit=p.fit,
                    note=p.note,
                )
                for p in kit.pads
            ],
        )
