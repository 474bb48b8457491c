"""Musical keys in two spellings: the *display* one keeps the library's accidental (``Bbm``;
the ``key`` payload field), the *canonical* one folds enharmonics onto sharps (``A#m``; the
indexed ``key_norm`` that filters and facets use, so ``A#m`` and ``Bbm`` find each other).
"""

from __future__ import annotations

import re

NOTE = r"(?P<root>[A-G])(?P<acc>#|b|♯|♭|[- ]?(?i:sharp|flat))?"
"""A note name: ``F#``, ``Bb``, ``Gsharp``, ``E flat``, ``F-sharp``."""
QUALITY = r"(?P<quality>(?i:minor|major|min|maj)|m|M)?"
"""The mode as people write it: ``m``, ``min``, ``minor``, ``maj``, ``major``, ``M``."""
CHORD_SUFFIX = r"(?:\d{1,2}|[b#♭♯]\d{1,2}|add\d{1,2}|sus[24]?|maj\d{0,2}|dim|aug)*"
"""What a chord name adds after its mode (``7``, ``7b5``, ``maj7``, ``add9``, ``sus4``): the
key is the root and the mode, so ``Bminor7b5`` is in Bm and ``Cmaj7`` in C."""

_SHARP_OF_FLAT = {"Db": "C#", "Eb": "D#", "Fb": "E", "Gb": "F#", "Ab": "G#", "Bb": "A#", "Cb": "B"}
_ENHARMONIC = {"E#": "F", "B#": "C"}
_ACCIDENTALS = {"♯": "#", "sharp": "#", "♭": "b", "flat": "b"}


def _accidental(text: str | None) -> str:
    """``#``, ``b`` or nothing, from any spelling (``sharp``, `` flat``, ``♭``...)."""
    text = (text or "").strip(" -")
    return _ACCIDENTALS.get(text.lower(), text)


def _is_minor(quality: str | None) -> bool:
    return quality is not None and (quality == "m" or quality.lower() in ("min", "minor"))


def display_key(root: str, accidental: str | None, quality: str | None) -> str:
    """``B`` + ``flat`` + ``minor`` -> ``Bbm``: the spelling as written, in one notation."""
    return root.upper() + _accidental(accidental) + ("m" if _is_minor(quality) else "")


def canonical_key(root: str, accidental: str | None, quality: str | None) -> str:
    """``A`` + ``minor`` -> ``Am``; flats become sharps (``Bb`` + ``m`` -> ``A#m``)."""
    note = root.upper() + _accidental(accidental)
    note = _ENHARMONIC.get(_SHARP_OF_FLAT.get(note, note), _SHARP_OF_FLAT.get(note, note))
    return note + ("m" if _is_minor(quality) else "")


def _match(text: str) -> re.Match[str] | None:
    text = text.strip()
    return re.fullmatch(rf"{NOTE}\s?{QUALITY}", text[:1].upper() + text[1:])


def normalize_key(text: str) -> str | None:
    """Canonical form of a key as a person writes it (``"F# minor"``, ``"Bbm"``, ``"c"``)."""
    match = _match(text)
    if not match:
        return None
    return canonical_key(match["root"], match["acc"], match["quality"])


def spell_key(text: str) -> str | None:
    """Display form of a key as a person writes it (``"Bb minor"`` -> ``"Bbm"``), or None."""
    match = _match(text)
    if not match:
        return None
    return display_key(match["root"], match["acc"], match["quality"])
