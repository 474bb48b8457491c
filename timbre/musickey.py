"""Musical keys in one canonical spelling, shared by ingest (which writes them) and the API
(which filters on them): root with sharps, ``m`` for minor, nothing for major (``A#m``, ``C``).
"""

from __future__ import annotations

import re

NOTE = r"(?P<root>[A-G])(?P<acc>#|b|♯|♭|sharp|flat)?"
QUALITY = r"(?P<quality>(?i:minor|major|min|maj)|m|M)?"

_SHARP_OF_FLAT = {"Db": "C#", "Eb": "D#", "Fb": "E", "Gb": "F#", "Ab": "G#", "Bb": "A#", "Cb": "B"}
_ENHARMONIC = {"E#": "F", "B#": "C"}


def canonical_key(root: str, accidental: str | None, quality: str | None) -> str:
    """``A`` + ``minor`` -> ``Am``; flats become sharps (``Bb`` + ``m`` -> ``A#m``)."""
    acc = {"♯": "#", "sharp": "#", "♭": "b", "flat": "b"}.get(accidental or "", accidental or "")
    note = root.upper() + acc
    note = _ENHARMONIC.get(_SHARP_OF_FLAT.get(note, note), _SHARP_OF_FLAT.get(note, note))
    minor = quality is not None and (quality == "m" or quality.lower() in ("min", "minor"))
    return note + ("m" if minor else "")


def normalize_key(text: str) -> str | None:
    """Canonical form of a key as a person writes it (``"F# minor"``, ``"Bbm"``, ``"c"``)."""
    text = text.strip()
    match = re.fullmatch(rf"{NOTE}\s?{QUALITY}", text[:1].upper() + text[1:])
    if not match:
        return None
    return canonical_key(match["root"], match["acc"], match["quality"])
