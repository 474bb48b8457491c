"""Payload metadata for one file: what its names, its own tags and its audio say.

Priority per field, most explicit first: the file's own tags, then its file name, then its
folders from the nearest up (genre reads folders from the top: packs and genre folders sit
there). Every field may stay None; no guess ever blocks indexing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.names import Vocabulary, guess_kind, parse_bpm, parse_key, tokens
from ingest.tags import FileTags


@dataclass(frozen=True)
class MetadataRules:
    """The configurable vocabularies (``ingest.genres`` and ``ingest.instruments``)."""

    genres: Vocabulary
    instruments: Vocabulary

    @classmethod
    def from_settings(
        cls, genres: Mapping[str, Sequence[str]], instruments: Mapping[str, Sequence[str]]
    ) -> MetadataRules:
        return cls(Vocabulary.from_mapping(genres), Vocabulary.from_mapping(instruments))


@dataclass(frozen=True)
class AudioFacts:
    """What decoding told about a file."""

    duration_s: float
    sample_rate: int
    channels: int
    format: str


def describe(
    path: Path, root: Path, audio: AudioFacts, tags: FileTags, rules: MetadataRules
) -> dict[str, Any]:
    """The descriptive payload fields of one file (identity and model fields are added later)."""
    relative = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
    folders = list(relative.parts[:-1])
    stem = path.stem
    nearest_first = [stem, *reversed(folders)]
    pack = folders[0] if folders else None

    bpm = tags.bpm or parse_bpm(*nearest_first)
    genre = rules.genres.find(*(t for t in (tags.genre,) if t), *folders, stem)
    instrument = rules.instruments.find(*nearest_first)
    key = tags.key or parse_key(*nearest_first)
    kind = guess_kind(nearest_first, audio.duration_s, bpm)
    tag_words = {" ".join(tokens(f)) for f in folders[1:]} | {w for w in tags.words if w}
    return {
        "pack": pack,
        "genre": genre,
        "bpm": round(bpm, 3) if bpm else None,
        "key": key,
        "instrument": instrument,
        "kind": kind,
        "duration_s": round(audio.duration_s, 4),
        "sample_rate": audio.sample_rate,
        "channels": audio.channels,
        "format": audio.format.lower(),
        "tags": sorted(w for w in tag_words if w),
    }
