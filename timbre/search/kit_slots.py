"""What a kit's pads are made of before any search: slot labels (the defaults, the checks,
which ones are drum slots) and the project context as a kit stores it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from timbre.errors import InvalidRequestError
from timbre.fit import ProjectContext
from timbre.kits_db import PAD_COUNTS
from timbre.search.palette import ONE_SHOT
from timbre.search.steer import parse_text
from timbre.store import SearchFilter

FIRST_NOTE = 36
"""MIDI note of pad 1: the General MIDI kick (C1 where middle C is C3); pad n plays 35 + n."""

DEFAULT_SLOTS: dict[int, tuple[str, ...]] = {
    8: ("kick", "snare", "closed hat", "open hat", "clap", "perc", "tom", "crash"),
    # Laid out so that the General MIDI drum notes 36-51 mostly play what GM puts there
    # (36 kick, 37 side stick, 38 snare, 39 clap, 42/46 hats, toms at 41/43/45, 49 crash, 51 ride).
    16: (
        "kick", "rim", "snare", "clap", "perc", "low tom", "closed hat", "mid tom",
        "shaker", "high tom", "open hat", "fx", "conga", "crash", "cowbell", "ride",
    ),
}  # fmt: skip

DRUM_WORDS = frozenset({
    "kick", "kicks", "bd", "bassdrum", "snare", "snares", "sd", "rim", "rimshot", "stick",
    "hat", "hats", "hihat", "hihats", "hh", "closed", "open", "pedal", "clap", "claps", "snap",
    "snaps", "perc", "percussion", "tom", "toms", "floor", "crash", "cymbal", "cymbals", "ride",
    "splash", "china", "shaker", "shakers", "tambourine", "tamb", "cowbell", "conga", "congas",
    "bongo", "bongos", "clave", "claves", "block", "fx", "sfx", "impact", "hit", "hits", "808",
    "909",
})  # fmt: skip
"""Words that make a slot a drum slot, searched among one-shots first."""

MAX_SLOT_CHARS = 40
_SLOT = re.compile(r"[^\x00-\x1f\x7f\ud800-\udfff]+")  # no control, no lone surrogate
_WORD = re.compile(r"[a-z0-9]+")


def check_slot(text: str) -> str:
    """A slot label, trimmed: 1 to 40 characters, no control characters, and something to
    look for (a pad is filled by searching its label: ``-distorted`` alone says only what to
    avoid, so it is refused here rather than at every later fill and swap)."""
    if not isinstance(text, str):
        raise InvalidRequestError("a slot label is text, e.g. 'kick'")
    label = " ".join(text.split())
    if not label or len(label) > MAX_SLOT_CHARS or not _SLOT.fullmatch(label):
        raise InvalidRequestError(
            f"a slot label needs 1 to {MAX_SLOT_CHARS} characters without control "
            f"characters, e.g. 'kick' (got {text!r})"
        )
    try:
        parse_text(label)
    except InvalidRequestError as exc:
        raise InvalidRequestError(f"slot label {label!r}: {exc}") from exc
    return label


def slots_for(size: int, given: Sequence[str] | None) -> list[str]:
    """The slot labels of a new kit: the ones given, then the defaults for the rest."""
    if size not in PAD_COUNTS:
        raise InvalidRequestError(f"pads: a kit has 8 or 16 pads, not {size}")
    labels = [check_slot(s) for s in given or ()]
    if len(labels) > size:
        raise InvalidRequestError(f"slots: at most {size} for a {size}-pad kit, not {len(labels)}")
    return labels + list(DEFAULT_SLOTS[size][len(labels) :])


def is_drum(slot: str) -> bool:
    words = _WORD.findall(slot.lower())
    return any(w in DRUM_WORDS or w.rstrip("s") in DRUM_WORDS for w in words)


def slot_filter(slot: str) -> SearchFilter | None:
    """The first search of a slot: one-shots for a drum slot, anything otherwise."""
    return SearchFilter(kind=(ONE_SHOT,)) if is_drum(slot) else None


def context_of(data: dict[str, Any] | None) -> ProjectContext | None:
    """A stored or requested context (``{"bpm", "key", "tolerance_pct"}``) as a ProjectContext."""
    if not data or (data.get("bpm") is None and data.get("key") is None):
        return None
    tolerance = data.get("tolerance_pct")
    if tolerance is None:
        return ProjectContext.of(data.get("bpm"), data.get("key"))
    return ProjectContext.of(data.get("bpm"), data.get("key"), float(tolerance))


def context_dict(
    context: ProjectContext | None, only_fitting: bool = False
) -> dict[str, Any] | None:
    if context is None:
        return None
    return {
        "bpm": context.bpm,
        "key": context.key,
        "tolerance_pct": context.tempo_tolerance_pct,
        "only_fitting": only_fitting,
    }
