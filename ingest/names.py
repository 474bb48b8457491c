"""What a sample library's names already say (``124bpm_Am_Bass_Loop.wav``, ``Deep House/Drums``):
BPM, key, instrument, genre, loop or one-shot. A name that says nothing gives None."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

from timbre.musickey import CHORD_SUFFIX, NOTE, display_key

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

# The mode in a name; a capital M is left out: "FM" and "AM" are synthesis, not F or A major.
_QUALITY = r"(?P<quality>(?i:minor|major|min|maj)|m)?"
# A key stands alone between separators, so "Amp", "Amen" or "Bass" never read as keys; a chord
# suffix may follow its mode ("Bminor7b5"), never a bare root ("C4" is a note, not a key).
_KEY_BODY = rf"{NOTE} ?{_QUALITY}(?(quality){CHORD_SUFFIX})(?![A-Za-z0-9#♯♭])"
_KEY = re.compile(rf"(?<![A-Za-z0-9]){_KEY_BODY}")
_KEY_WORD = re.compile(rf"(?i:\bkey\s*(?:of\s*)?[-_: ]?\s*){_KEY_BODY}")

_TOKEN = re.compile(r"[a-z0-9]+")
_WORD = re.compile(r"[A-Za-z0-9]+")  # a name's words between separators, case kept

_ONE_SHOT_WORDS = ("one shot", "one shots", "oneshot", "oneshots", "hit", "hits", "shot", "shots")
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
    """The key stated in the first name that states one, spelled as written (``Bbm``). A bare
    letter ("Kick A") is too often a variation label: a key needs a quality (``Am``), an
    accidental (``F#``) or the word "key" before it."""
    for name in names:
        match = _KEY_WORD.search(name)
        if match:
            return display_key(match["root"], match["acc"], match["quality"])
        for match in _KEY.finditer(name.replace("_", " ").replace("-", " ")):
            if match["quality"] or match["acc"]:
                return display_key(match["root"], match["acc"], match["quality"])
    return None


_CASE_SPLIT = re.compile(
    r"(?<=[a-z])(?=[A-Z])"  # camelCase
    r"|(?<=[A-Z])(?=[A-Z][a-z])"  # HHClosed -> HH Closed
    r"|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])"  # Crash18, 808Kick
)
# Gear whose model name starts like a drum abbreviation: "TB303" is a synth, not a tambourine.
_GEAR = re.compile(r"(?<![A-Za-z])(?:TB|SH|CR|RS)[-_ ]?(?:303|101|09|78|8000)(?!\d)", re.I)

SHORT_WORD = 2
"""Vocabulary words this short (``bd``, ``sn``) match whole tokens only, and lose to a full word
away from the start of a name."""
EVERYDAY_ABBREVIATIONS = frozenset(("oh", "sh"))
"""Kit abbreviations that are everyday words too ("Oh Yeah"): instruments only in capitals
(``OH_01``) or right before a number (``oh 2``)."""

# fmt: off
COMPOUND_MODIFIERS = frozenset((
    "open", "opened", "closed", "close", "pedal", "foot", "floor", "hi", "high", "lo", "low",
    "mid", "side", "semi", "half", "rack", "cross", "ghost", "choke", "mute", "muted",
))
# fmt: on
"""Words glued to a vocabulary word in one token ("openhat", "floortom"); a token is a compound
only when it splits wholly into vocabulary words and these ("belofilms" does not)."""


def tokens(name: str) -> list[str]:
    """Lower-case word pieces of a name, split on separators, case changes and digits."""
    return _TOKEN.findall(_CASE_SPLIT.sub(" ", name).lower())


@dataclass(frozen=True)
class _Match:
    canonical: str
    start: int  # token index
    length: int  # tokens covered
    short: bool  # a short abbreviation (SHORT_WORD letters or fewer)
    order: int  # the canonical's place in the vocabulary


@dataclass(frozen=True)
class Vocabulary:
    """Canonical names and the words that mean them (``hat: [hat, hihat, hh]``), matched as
    whole tokens or joined phrases ("deephouse"). In one name the first token wins (``SN_06``),
    then the longest phrase, then a full word over a short abbreviation, then vocabulary order."""

    words: Mapping[str, tuple[str, ...]]

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Iterable[str]]) -> Vocabulary:
        return cls(
            {name: tuple(w.lower() for w in (name, *words)) for name, words in mapping.items()}
        )

    @cached_property
    def _phrases(self) -> dict[tuple[str, ...], tuple[str, int]]:
        """Token tuple -> (canonical, order); the first canonical listing a phrase keeps it."""
        out: dict[tuple[str, ...], tuple[str, int]] = {}
        for order, (canonical, words) in enumerate(self.words.items()):
            for word in words:
                parts = tuple(tokens(word))
                if parts:
                    out.setdefault(parts, (canonical, order))
        return out

    @cached_property
    def _joined(self) -> dict[str, tuple[str, int]]:
        """Phrases written as one token ("hihat", "deephouse"), and single words."""
        out: dict[str, tuple[str, int]] = {}
        for parts, found in self._phrases.items():
            out.setdefault("".join(parts), found)
        return out

    @cached_property
    def _longest(self) -> int:
        return max((len(p) for p in self._phrases), default=1)

    def matches(self, name: str) -> list[_Match]:
        """Every vocabulary phrase in one name, by token position."""
        toks: list[str] = []
        capitals: list[bool] = []
        found: list[_Match] = []
        # A word written in mixed case ("DnB", "HipHop") is also read whole: "dnb", "hiphop".
        for word in _WORD.findall(_GEAR.sub(" ", name)):
            parts = tokens(word)
            hit = self._joined.get(word.lower()) if len(parts) > 1 else None
            if hit is not None:
                found.append(_Match(hit[0], len(toks), len(parts), False, hit[1]))
            toks += parts
            capitals += [piece.isupper() for piece in _CASE_SPLIT.sub(" ", word).split()]
        for i in range(len(toks)):
            if toks[i] in EVERYDAY_ABBREVIATIONS and not (
                capitals[i] or (i + 1 < len(toks) and toks[i + 1].isdigit())
            ):
                continue
            for n in range(min(self._longest, len(toks) - i), 0, -1):
                hit = self._phrases.get(tuple(toks[i : i + n]))
                if hit is None and n == 1:
                    hit = self._joined.get(toks[i]) or self._compound(toks[i])
                if hit is not None:
                    short = n == 1 and len(toks[i]) <= SHORT_WORD
                    found.append(_Match(hit[0], i, n, short, hit[1]))
                    break
        return found

    def _compound(self, token: str) -> tuple[str, int] | None:
        """The one vocabulary word (longer than :data:`SHORT_WORD`) a compound token is made of
        with :data:`COMPOUND_MODIFIERS`, if any."""
        best: tuple[str, int] | None = None

        def split(rest: str, word: tuple[str, int] | None) -> bool:
            nonlocal best
            if not rest:
                if word is not None:
                    best = word
                return word is not None
            for end in range(len(rest), 0, -1):
                piece = rest[:end]
                if piece in COMPOUND_MODIFIERS and split(rest[end:], word):
                    return True
                hit = self._joined.get(piece) if len(piece) > SHORT_WORD else None
                if hit is not None and (word is None or word == hit) and split(rest[end:], hit):
                    return True
            return False

        split(token, None)
        return best

    def find(self, *names: str) -> str | None:
        """The canonical name the first name that states one states, scanning names in order
        (see the class for which match of a name wins)."""
        for name in names:
            found = self.matches(name)
            if found:
                best = min(
                    found, key=lambda m: (m.start != 0, -m.length, m.short, m.order, m.start)
                )
                return best.canonical
        return None


def stated_kind(name_parts: Iterable[str]) -> str | None:
    """``loop`` or ``one_shot`` when the names say it (and not both), else None."""
    text = " " + " ".join(" ".join(tokens(p)) for p in name_parts) + " "
    says_loop = any(f" {w} " in text for w in _LOOP_WORDS)
    says_shot = any(f" {' '.join(tokens(w))} " in text for w in _ONE_SHOT_WORDS)
    if says_loop and not says_shot:
        return "loop"
    if says_shot and not says_loop:
        return "one_shot"
    return None
