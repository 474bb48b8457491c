"""What a sample library's names already say: BPM, key, instrument, genre, loop or one-shot.

Producers name files and folders in a handful of conventions (``Kick_Punchy_01.wav``,
``124bpm_Am_Bass_Loop.wav``, ``Deep House/Drums/Hats``). These parsers read them. Every field
is optional: a name that says nothing gives None, never an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from timbre.musickey import NOTE, QUALITY, display_key

BPM_RANGE = (50.0, 220.0)
"""Plausible tempos (BPM); numbers outside are sample numbers, drum machine models (808)..."""

# "124bpm", "124 BPM", "bpm124", "bpm_124", "124.5bpm"
_BPM_EXPLICIT = re.compile(
    r"(?<![\d.])(\d{2,3}(?:\.\d+)?)\s*[-_ ]?\s*bpm(?![a-z])"  # 124bpm, 124 BPM
    r"|(?<![a-z])bpm\s*[-_ ]?\s*(\d{2,3}(?:\.\d+)?)(?![\d.])",  # bpm124, BPM_124
    re.IGNORECASE,
)
# A bare number between separators: "_124_", "-124-", " 124 ".
_BPM_BARE = re.compile(r"(?<=[_\- ])(\d{2,3})(?=[_\- ])")

# A key must stand alone between separators so that "Amp" or "Bass" never read as keys.
_KEY = re.compile(rf"(?<![A-Za-z0-9]){NOTE}\s?{QUALITY}(?![A-Za-z0-9#♯♭])")
_KEY_WORD = re.compile(rf"\bkey\s*(?:of\s*)?[-_: ]?\s*{NOTE}\s?{QUALITY}(?![A-Za-z0-9#♯♭])", re.I)

_TOKEN = re.compile(r"[a-z0-9]+")

_ONE_SHOT_WORDS = ("one shot", "oneshot", "one-shot", "one_shot", "oneshots", "hit", "hits", "shot")
_LOOP_WORDS = ("loop", "loops", "groove", "break", "breaks", "fill")


def parse_bpm(*names: str) -> float | None:
    """The tempo stated in the first name that states one (file name first, then folders)."""
    for name in names:
        for match in _BPM_EXPLICIT.finditer(name):
            value = float(match.group(1) or match.group(2))
            if BPM_RANGE[0] <= value <= BPM_RANGE[1]:
                return value
        for match in _BPM_BARE.finditer(name):
            value = float(match.group(1))
            if BPM_RANGE[0] <= value <= BPM_RANGE[1]:
                return value
    return None


def parse_key(*names: str) -> str | None:
    """The musical key stated in the first name that states one, spelled as the name spells it
    (``Bbm`` stays ``Bbm``; the store folds enharmonics for filters and facets).

    A bare letter ("Kick A.wav") is too often a variation label, so a key needs a quality
    (``Am``, ``C major``), an accidental (``F#``) or the word "key" before it.
    """
    for name in names:
        match = _KEY_WORD.search(name)
        if match:
            return display_key(match["root"], match["acc"], match["quality"])
        for match in _KEY.finditer(name.replace("_", " ").replace("-", " ")):
            if match["quality"] or match["acc"]:
                return display_key(match["root"], match["acc"], match["quality"])
    return None


def tokens(name: str) -> list[str]:
    """Lower-case word pieces of a name, splitting camelCase and digits from letters."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])", " ", name)
    return _TOKEN.findall(spaced.lower())


@dataclass(frozen=True)
class Vocabulary:
    """Canonical names and the words that mean them, e.g. ``hat: [hat, hihat, hh, ...]``."""

    words: Mapping[str, tuple[str, ...]]

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Iterable[str]]) -> Vocabulary:
        return cls(
            {name: tuple(w.lower() for w in (name, *words)) for name, words in mapping.items()}
        )

    def find(self, *names: str) -> str | None:
        """The canonical name of the first vocabulary word found, scanning names in order.

        Multi-word entries ("deep house") match consecutive tokens; longer matches win.
        """
        for name in names:
            toks = tokens(name)
            joined = f" {' '.join(toks)} "
            squashed = "".join(toks)
            best: tuple[int, str] | None = None
            for canonical, words in self.words.items():
                for word in words:
                    parts = tokens(word)
                    phrase = f" {' '.join(parts)} "
                    hit = phrase in joined or (len(parts) > 1 and "".join(parts) in squashed)
                    if hit and (best is None or len(phrase) > best[0]):
                        best = (len(phrase), canonical)
            if best:
                return best[1]
        return None


def stated_kind(name_parts: Iterable[str]) -> str | None:
    """``loop`` or ``one_shot`` when the names say it (and not both), else None."""
    text = " " + " ".join(" ".join(tokens(p)) for p in name_parts) + " "
    squashed = text.replace(" ", "")
    says_loop = any(f" {w} " in text for w in _LOOP_WORDS)
    says_shot = (
        any(f" {' '.join(tokens(w))} " in text for w in _ONE_SHOT_WORDS) or "oneshot" in squashed
    )
    if says_loop and not says_shot:
        return "loop"
    if says_shot and not says_loop:
        return "one_shot"
    return None


def guess_kind(name_parts: Iterable[str], duration_s: float, bpm: float | None) -> str:
    """``loop`` or ``one_shot``, from the words in the names, the duration and the tempo.

    Names decide when they say it; otherwise a clip that lasts a whole number of bars at its
    stated tempo is a loop, and anything under 1.5 s is a one-shot.
    """
    stated = stated_kind(name_parts)
    if stated is not None:
        return stated
    if duration_s < 1.5:
        return "one_shot"
    if bpm:
        beats = duration_s * bpm / 60.0
        if beats >= 3.5 and abs(beats - round(beats)) < 0.05 * max(1.0, round(beats) / 4):
            return "loop"
    return "loop" if duration_s >= 4.0 else "one_shot"
