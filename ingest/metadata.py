"""Payload metadata for one file: what its names, its own tags and its audio say.

Priority per field, most explicit first: the file's own tags, then its file name, then its
folders from the nearest up (genre reads folders from the top: packs and genre folders sit
there), then, for BPM and key, the audio itself (:mod:`timbre.audio.analysis`). Every field
may stay None; no guess ever blocks indexing.

How BPM and key were obtained travels with them: ``bpm_source`` / ``key_source`` are
``tags``, ``name`` (the file or folder names) or ``audio``, None when unknown.
``bpm_confidence`` / ``key_confidence`` (0..1) rate an estimate from the audio and are None
for a stated value: a value a producer wrote is not estimated, and rating it 1.0 would
claim a certainty nobody measured (names can be wrong); filter on the source to trust only
stated values. Audio BPM goes to loops only (a one-shot never gets a BPM): a clip the names
call neither is a loop when its sound has a steady pulse and lasts whole bars of it, else the
duration rule of :func:`~ingest.names.guess_kind` holds. An audio key goes to anything clearly
pitched, which leaves drums and noise without one; what the names call a drum (a kick, a
ride, a tom) is not asked for one at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.names import Vocabulary, guess_kind, parse_bpm, parse_key, stated_kind, tokens
from ingest.tags import FileTags
from timbre.audio.analysis import Heard
from timbre.settings import IngestSettings

PROMOTE_MIN = 0.3
"""Least tempo confidence for a clip the names leave undecided to become a loop by its sound
(it must also last whole bars at that tempo)."""

Listen = Callable[[bool, bool], Heard | None]
"""``listen(tempo, key)``: what the file's audio says, estimating only what is asked
(None when the analysis failed)."""


@dataclass(frozen=True)
class MetadataRules:
    """The configurable vocabularies (``ingest.genres``, ``ingest.instruments``) and the
    instruments the audio is never asked a key of (``ingest.unpitched_instruments``)."""

    genres: Vocabulary
    instruments: Vocabulary
    unpitched: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, ingest: IngestSettings) -> MetadataRules:
        return cls(
            Vocabulary.from_mapping(ingest.genres),
            Vocabulary.from_mapping(ingest.instruments),
            frozenset(ingest.unpitched_instruments),
        )


@dataclass(frozen=True)
class AudioFacts:
    """What decoding told about a file."""

    duration_s: float
    sample_rate: int
    channels: int
    format: str


def name_parts(path: Path, root: Path | None) -> tuple[list[str], str]:
    """The folders from ``root`` down to ``path`` (the first is the pack), and its stem."""
    relative = Path(path.name)
    if root is not None and path.is_relative_to(root):
        relative = path.relative_to(root)
    return list(relative.parts[:-1]), path.stem


def describe(
    path: Path,
    root: Path | None,
    audio: AudioFacts,
    tags: FileTags,
    rules: MetadataRules,
    *,
    listen: Listen | None = None,
) -> dict[str, Any]:
    """The descriptive payload fields of one file (identity and model fields are added later).

    Args:
        path: the file.
        root: the outermost library root that holds it (its first folder is the pack; see
            :mod:`ingest.derive`), None when no root does (only the file name is read).
        audio: what decoding said.
        tags: the file's own tags.
        rules: the vocabularies.
        listen: the audio analysis, asked for the tempo of a loop and the key of anything
            whose names and tags state none; None when the audio is not at hand.
    """
    folders, stem = name_parts(path, root)
    nearest_first = [stem, *reversed(folders)]
    pack = folders[0] if folders else None

    name_bpm = parse_bpm(*nearest_first)
    bpm, bpm_source = (tags.bpm, "tags") if tags.bpm else (name_bpm, "name" if name_bpm else None)
    genre = rules.genres.find(*(t for t in (tags.genre,) if t), *folders, stem)
    instrument = rules.instruments.find(*nearest_first)
    name_key = parse_key(*nearest_first)
    key, key_source = (tags.key, "tags") if tags.key else (name_key, "name" if name_key else None)
    kind = guess_kind(nearest_first, audio.duration_s, bpm)
    tag_words = {" ".join(tokens(f)) for f in folders[1:]} | {w for w in tags.words if w}

    heard = hear(
        nearest_first,
        audio.duration_s,
        kind,
        bpm=(bpm, bpm_source),
        key=(key, key_source),
        listen=listen,
        ask_key=instrument not in rules.unpitched,
    )
    return {
        "pack": pack,
        "genre": genre,
        "instrument": instrument,
        "duration_s": round(audio.duration_s, 4),
        "sample_rate": audio.sample_rate,
        "channels": audio.channels,
        "format": audio.format.lower(),
        "tags": sorted(w for w in tag_words if w),
        **heard,
    }


Stated = tuple[Any, str | None]
"""A value with its source (``tags`` or ``name``), or ``(None, None)`` when nothing states it."""


def hear(
    names: Sequence[str],
    duration_s: float,
    kind: str,
    *,
    bpm: Stated,
    key: Stated,
    listen: Listen | None,
    ask_key: bool = True,
) -> dict[str, Any]:
    """The facts the audio may fill: BPM, key and kind, with sources and confidences.

    Shared by ingest (:func:`describe`) and by ``timbre reanalyse`` (:mod:`ingest.reanalyse`),
    so a backfilled point carries what a fresh ingest would have given it.

    Args:
        names: the file's stem, then its folders from the nearest up.
        duration_s: the file's duration.
        kind: the kind the names and the duration say.
        bpm: the stated BPM and its source.
        key: the stated key and its source.
        listen: the audio analysis, or None when the audio is not at hand.
        ask_key: False for what the names call a drum (``ingest.unpitched_instruments``):
            a ringing cymbal or tom is as "tonal" to the key detector as a chord.

    Returns:
        ``bpm``, ``bpm_source``, ``bpm_confidence``, ``key``, ``key_source``,
        ``key_confidence``, ``kind``, ``analysis_version`` and ``peaks``.
    """
    (bpm_value, bpm_source), (key_value, key_source) = bpm, key
    bpm_confidence = key_confidence = None
    # A clip the names do not call a loop or a one-shot may still prove a loop by its sound
    # (a one- or two-bar loop is shorter than the 4 s the duration rule wants).
    undecided = kind == "one_shot" and stated_kind(names) is None
    wants_tempo = bpm_value is None and (kind == "loop" or undecided)
    heard = listen(wants_tempo, ask_key and key_value is None) if listen else None
    tempo = heard.tempo if heard is not None and bpm_value is None else None
    if tempo is not None and kind != "loop" and tempo.bars and tempo.confidence >= PROMOTE_MIN:
        kind = guess_kind(names, duration_s, tempo.bpm)
    if tempo is not None and kind == "loop":
        bpm_value, bpm_source, bpm_confidence = tempo.bpm, "audio", tempo.confidence
    if heard is not None and heard.key is not None and key_value is None:
        key_value, key_source, key_confidence = heard.key.key, "audio", heard.key.confidence
    return {
        "bpm": round(bpm_value, 3) if bpm_value else None,
        "bpm_source": bpm_source,
        "bpm_confidence": bpm_confidence,
        "key": key_value,
        "key_source": key_source,
        "key_confidence": key_confidence,
        "kind": kind,
        "analysis_version": heard.version if heard else None,
        "peaks": heard.peaks if heard else None,
    }
