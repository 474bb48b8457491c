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
stated values. Whether a clip is a loop or a one-shot is decided from evidence (tags, names,
the envelope and pulse of the sound, then its length; :mod:`ingest.kind`), and
``kind_source`` says which decided. Audio BPM goes to loops only (a one-shot never gets a
BPM). An audio key goes to anything clearly pitched, which leaves drums and noise without
one; what the names call a drum (a kick, a ride, a tom, a conga) is not asked for one at all.
docs/facts.md describes every fact for users.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.kind import decide_kind, pre_kind
from ingest.names import Vocabulary, parse_bpm, parse_key, tokens
from ingest.tags import FileTags
from timbre.audio.analysis import Heard
from timbre.settings import IngestSettings

Stated = tuple[Any, str | None]
"""A value with its source (``tags`` or ``name``), or ``(None, None)`` when nothing states it."""

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


NAME_FIELDS = ("pack", "genre", "instrument", "instrument_source", "tags")
"""The payload fields the names (and the file's own tags) alone give."""
AUDIO_FIELDS = (
    "bpm",
    "bpm_source",
    "bpm_confidence",
    "key",
    "key_source",
    "key_confidence",
    "kind",
    "kind_source",
    "analysis_version",
    "peaks",
)
"""The payload fields :func:`hear` returns: stated facts, and what the audio says of the rest."""


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


@dataclass(frozen=True)
class NameFacts:
    """What a file's names and own tags state, before any audio is heard.

    Attributes:
        names: the file's stem, then its folders from the nearest up (to the library root).
        pack: the first folder under the library root.
        genre, instrument: from the vocabularies (None when nothing states one).
        bpm, key: the stated value and its source (``tags`` or ``name``), or ``(None, None)``.
        kind: what the file's tags say (an ACID chunk), else None.
        tags: the folder words below the pack and the file's own tag words.
    """

    names: list[str]
    pack: str | None
    genre: str | None
    instrument: str | None
    bpm: Stated
    key: Stated
    kind: str | None
    tags: list[str]


def name_facts(path: Path, root: Path | None, tags: FileTags, rules: MetadataRules) -> NameFacts:
    """The facts the names and tags of ``path`` (found under library ``root``) state."""
    folders, stem = name_parts(path, root)
    nearest_first = [stem, *reversed(folders)]
    name_bpm = parse_bpm(*nearest_first)
    name_key = parse_key(*nearest_first)
    tag_words = {" ".join(tokens(f)) for f in folders[1:]} | {w for w in tags.words if w}
    return NameFacts(
        names=nearest_first,
        pack=folders[0] if folders else None,
        genre=rules.genres.find(*(t for t in (tags.genre,) if t), *folders, stem),
        instrument=rules.instruments.find(*nearest_first),
        bpm=(tags.bpm, "tags") if tags.bpm else (name_bpm, "name" if name_bpm else None),
        key=(tags.key, "tags") if tags.key else (name_key, "name" if name_key else None),
        kind=tags.kind,
        tags=sorted(w for w in tag_words if w),
    )


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
    facts = name_facts(path, root, tags, rules)
    heard = hear(
        facts.names,
        audio.duration_s,
        bpm=facts.bpm,
        key=facts.key,
        tagged_kind=facts.kind,
        listen=listen,
        ask_key=facts.instrument not in rules.unpitched,
    )
    return {
        "pack": facts.pack,
        "genre": facts.genre,
        "instrument": facts.instrument,
        "duration_s": round(audio.duration_s, 4),
        "sample_rate": audio.sample_rate,
        "channels": audio.channels,
        "format": audio.format.lower(),
        "tags": facts.tags,
        **heard,
    }


def hear(
    names: Sequence[str],
    duration_s: float,
    *,
    bpm: Stated,
    key: Stated,
    listen: Listen | None,
    tagged_kind: str | None = None,
    ask_key: bool = True,
) -> dict[str, Any]:
    """The facts the audio may fill: BPM, key and kind, with sources and confidences.

    Shared by ingest (:func:`describe`) and by ``timbre reanalyse`` (:mod:`ingest.reanalyse`),
    so a backfilled point carries what a fresh ingest would have given it.

    Args:
        names: the file's stem, then its folders from the nearest up.
        duration_s: the file's duration.
        bpm: the stated BPM and its source.
        key: the stated key and its source.
        listen: the audio analysis, or None when the audio is not at hand.
        tagged_kind: the kind the file's own tags state (an ACID chunk), if any.
        ask_key: False for what the names call a drum (``ingest.unpitched_instruments``):
            a ringing cymbal or tom is as "tonal" to the key detector as a chord.

    Returns:
        ``bpm``, ``bpm_source``, ``bpm_confidence``, ``key``, ``key_source``,
        ``key_confidence``, ``kind``, ``kind_source``, ``analysis_version`` and ``peaks``.
    """
    (bpm_value, bpm_source), (key_value, key_source) = bpm, key
    bpm_confidence = key_confidence = None
    # A one-shot never gets a tempo; anything else may prove a loop by its pulse, and a loop
    # the names call so gets its BPM from it.
    stated = pre_kind(names, tagged_kind)
    wants_tempo = bpm_value is None and (stated is None or stated[0] == "loop")
    heard = listen(wants_tempo, ask_key and key_value is None) if listen else None
    tempo = heard.tempo if heard is not None and bpm_value is None else None
    kind, kind_source = decide_kind(
        names,
        duration_s,
        tagged=tagged_kind,
        bpm=(bpm_value, bpm_source),
        tempo=tempo,
        envelope=heard.envelope if heard is not None else None,
    )
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
        "kind_source": kind_source,
        "analysis_version": heard.version if heard else None,
        "peaks": heard.peaks if heard else None,
    }
