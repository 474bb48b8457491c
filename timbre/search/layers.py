"""Velocity layers and round robins: files of one instrument that only their names tell apart.

Their embeddings are as close as a re-encoded copy's, so the duplicate report tells them apart
by name: files in one folder whose names (split into words on separators and case changes)
differ only by layer markers are layers of one sound. A marker is a strength (``soft2``,
``mf``), a velocity or round-robin tag (``v1``, ``rr2``), or a trailing bare number set apart
by a separator (``_01``; ``Crash18`` names an instrument). "Mid", "hi" and "low" name pitches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath

STRENGTHS = frozenset((
    "hard", "harder", "hardest", "soft", "softer", "softest", "med", "medium", "normal",
    "loud", "louder", "loudest", "quiet", "quieter", "quietest", "light", "lighter", "heavy",
    "heavier", "strong", "weak", "ppp", "pp", "mp", "mf", "ff", "fff",
))  # fmt: skip
"""Words for how hard an instrument was struck (a velocity layer), lower case."""

_STRENGTH = re.compile(rf"(?:{'|'.join(sorted(STRENGTHS, key=len, reverse=True))})\d*")
_TAG = re.compile(r"(?:v|vel|velo|velocity|rr|roundrobin|layer|lyr)\d*|v\d+|rr\d+")
_SEPARATORS = re.compile(r"[\s_\-.+]+")
_CASE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


@dataclass(frozen=True)
class LayerName:
    """A file name read for layers: its folder, the words of its sound and its layer markers
    (lower case, in order; either may be empty)."""

    folder: str
    sound: tuple[str, ...]
    layer: tuple[str, ...]

    def is_layer_of(self, other: LayerName) -> bool:
        """Another layer of the same sound: same folder, same sound, a different layer."""
        return (
            bool(self.sound)
            and self.folder == other.folder
            and self.sound == other.sound
            and self.layer != other.layer
        )


def layer_name(path: str) -> LayerName:
    """``path`` read as :class:`LayerName` (the folder is the path's parent as stored)."""
    pure = PurePath(path)
    chunks = [c for c in _SEPARATORS.split(pure.stem) if c]
    sound: list[str] = []
    layer: list[str] = []
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1
        if last and chunk.isdigit() and len(chunks) > 1:
            layer.append(str(int(chunk)))  # "_01" and "_1" are the same take number
            continue
        for word in (w.lower() for w in _CASE.split(chunk) if w):
            (layer if _STRENGTH.fullmatch(word) or _TAG.fullmatch(word) else sound).append(word)
    return LayerName(str(pure.parent), tuple(sound), tuple(layer))
