"""Loop or one-shot, from evidence, and which evidence decided (the payload's ``kind_source``).

Length alone misleads: a crash cymbal rings for 12 s and a guitar strum for 6, and both are
one-shots. The evidence, most explicit first:

1. ``tags``: the file's ACID chunk says one-shot or loop.
2. ``name``: the file's own name says it (``Kick_Loop``, ``Chord One Shot``), or states a
   tempo the clip lasts whole bars of (``Pad_124bpm``: one-shots have no tempo).
3. ``audio``: a sound that decays to silence after one gesture, with no attack after it, is a
   one-shot (:mod:`timbre.audio.envelope`); a steady pulse the clip lasts whole bars of, or a
   pulse whose attacks keep coming back, is a loop (:mod:`timbre.audio.tempo`).
4. ``duration``: under 1.5 s, a one-shot (too short for a bar of any tempo a loop is cut at).
5. ``name``: a folder says it (``Loops/``, ``One Shots/``); kits' folder names are looser
   ("VariBreaks" holds single hits), so the sound outranks them.
6. ``duration``: what is left is a loop from 4 s up, else a one-shot.
"""

from __future__ import annotations

from collections.abc import Sequence

from ingest.names import stated_kind
from timbre.audio.envelope import Envelope
from timbre.audio.tempo import TempoEstimate

KIND_SOURCES = ("tags", "name", "audio", "duration")

SHORT_S = 1.5
"""Shorter clips are one-shots when nothing else tells (seconds)."""
LONG_S = 4.0
"""Clips this long are loops when nothing else tells (seconds): held pads and beds."""
PROMOTE_MIN = 0.3
"""Least tempo confidence for a clip whose names and envelope leave it open to become a loop
by its pulse (it must also last whole bars at that tempo)."""


def whole_bars(duration_s: float, bpm: float) -> bool:
    """The clip lasts a whole number of beats, at least most of a bar, at ``bpm``."""
    beats = duration_s * bpm / 60.0
    return beats >= 3.5 and abs(beats - round(beats)) < 0.05 * max(1.0, round(beats) / 4)


def pre_kind(names: Sequence[str], tagged: str | None) -> tuple[str, str] | None:
    """What the tags or the file's own name say, before any audio: ``(kind, source)``."""
    if tagged is not None:
        return tagged, "tags"
    own = stated_kind(names[:1])
    return (own, "name") if own is not None else None


def decide_kind(
    names: Sequence[str],
    duration_s: float,
    *,
    tagged: str | None = None,
    bpm: tuple[float | None, str | None] = (None, None),
    tempo: TempoEstimate | None = None,
    envelope: Envelope | None = None,
) -> tuple[str, str]:
    """``(kind, kind_source)`` from the evidence in the order of the module's list.

    Args:
        names: the file's stem, then its folders from the nearest up.
        duration_s: the clip's duration.
        tagged: the kind the file's own tags state, if any.
        bpm: a stated tempo and its source (``tags`` or ``name``), if any.
        tempo: the tempo heard in the audio, if asked and found.
        envelope: the envelope of the audio, if it was at hand.
    """
    bpm_value, bpm_source = bpm
    evidence = (
        pre_kind(names, tagged),
        ("loop", bpm_source or "name") if bpm_value and whole_bars(duration_s, bpm_value) else None,
        _by_sound(tempo, envelope),
        ("one_shot", "duration") if duration_s < SHORT_S else None,
        _by_folders(names),
    )
    fallback = ("loop" if duration_s >= LONG_S else "one_shot"), "duration"
    return next((found for found in evidence if found is not None), fallback)


def _by_sound(tempo: TempoEstimate | None, envelope: Envelope | None) -> tuple[str, str] | None:
    """One gesture decaying to silence is a one-shot; whole bars of a steady pulse, or a
    pulse whose attacks keep coming back, a loop."""
    if envelope is not None and envelope.decays:
        return "one_shot", "audio"
    if tempo is not None:
        bars = tempo.bars is not None and tempo.confidence >= PROMOTE_MIN
        if bars or (envelope is not None and envelope.repeats):
            return "loop", "audio"
    return None


def _by_folders(names: Sequence[str]) -> tuple[str, str] | None:
    said = stated_kind(names[1:])
    return (said, "name") if said is not None else None


def guess_kind(name_parts: Sequence[str], duration_s: float, bpm: float | None) -> str:
    """``loop`` or ``one_shot`` from the names, the duration and a stated tempo alone, for
    callers without the audio."""
    return decide_kind(list(name_parts), duration_s, bpm=(bpm, "name"))[0]
