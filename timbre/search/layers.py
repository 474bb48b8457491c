"""Velocity layers and round robins: files of one instrument that only their names tell apart.

A multi-sampled instrument stores each strike strength (``Cowbell-Soft``, ``Cowbell-Hard``,
``Kick_v1`` .. ``Kick_v5``) and each repeated take (``Snare_rr1``, ``Snare_rr2``, ``hh_01``,
``hh_02``) as its own file in one folder. The embeddings of such files are often as close as
a re-encoded copy's (a softer strike is mostly the same spectrum, quieter), so the duplicate
report must tell them apart by name: two files in one folder whose names differ only by such
words or numbers are layers of one sound, never duplicates of each other.

A name is split into words on separators (space ``_ - . +``) and on case changes
(``CajonThumps`` -> ``Cajon Thumps``). A word is a *layer marker* when it is

- a strength (``hard``, ``softest``, ``med``, ``loud``, ``quiet``, ``normal``, ``light``,
  a dynamic such as ``mf`` or ``ff``), optionally followed by a number (``soft2``);
- a velocity or round-robin tag with its number (``v1``, ``v127``, ``vel``, ``vel3``,
  ``velocity``, ``rr``, ``rr2``, ``layer``, ``layer1``);
- the name's last word when it is a bare number set apart by a separator (``_01``, ``-3``,
  `` 2``). A number glued to a word (``Crash18``, ``snare1``) names a different instrument
  more often than a take, so it stays part of the name.

What is left, lower-cased, is the name's *sound* (``cowbell``); the markers are its *layer*
(``hard``). "Mid", "hi" and "low" are not strengths: they name tom and conga pitches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath

STRENGTHS = frozenset(
    {
        "hard",
        "harder",
        "hardest",
        "soft",
        "softer",
        "softest",
        "med",
        "medium",
        "normal",
        "loud",
        "louder",
        "loudest",
        "quiet",
        "quieter",
        "quietest",
        "light",
        "lighter",
        "heavy",
        "heavier",
        "strong",
        "weak",
        "ppp",
        "pp",
        "mp",
        "mf",
        "ff",
        "fff",
    }
)
"""Words for how hard an instrument was struck (a velocity layer), lower case."""

_STRENGTH = re.compile(rf"(?:{'|'.join(sorted(STRENGTHS, key=len, reverse=True))})\d*")
_TAG = re.compile(r"(?:v|vel|velo|velocity|rr|roundrobin|layer|lyr)\d*|v\d+|rr\d+")
_SEPARATORS = re.compile(r"[\s_\-.+]+")
_CASE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


@dataclass(frozen=True)
class LayerName:
    """A file name read for velocity layers and round robins.

    Attributes:
        folder: the folder the file is in (layers share one).
        sound: the name without its layer markers, lower case (empty when nothing is left).
        layer: the markers, lower case, in order (empty for a plain name).
    """

    folder: str
    sound: tuple[str, ...]
    layer: tuple[str, ...]

    def is_layer_of(self, other: LayerName) -> bool:
        """Another layer (or round robin) of the same sound: same folder, same sound, a
        different layer."""
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
