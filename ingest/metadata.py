"""Payload metadata for one file: what its names, its own tags and its audio say.

Per field, most explicit first: the file's own tags, its file name, its folders (nearest up;
genre from the top), then for BPM and key the audio. Any field may stay None; ``*_source``
says where a value came from, a confidence rates only an audio estimate. Audio BPM goes to
loops only, an audio key never to what the names call a drum (docs/facts.md).

Loop or one-shot (``kind_source``), most explicit first, since length alone misleads:
``tags`` (ACID chunk); ``name`` (own name, or a stated tempo the clip lasts whole bars of);
``audio`` (one decaying gesture: one-shot; whole bars of a steady pulse or recurring attacks:
loop); ``duration`` under :data:`SHORT_S`; a folder ``name``; else ``duration`` vs :data:`LONG_S`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.names import Vocabulary, parse_bpm, parse_key, stated_kind, tokens
from ingest.tags import FileTags
from timbre.audio.analysis import Envelope, Heard
from timbre.audio.tempo import TempoEstimate
from timbre.settings import IngestSettings

Stated = tuple[Any, str | None]
"""A value with its source (``tags`` or ``name``), or ``(None, None)`` when nothing states it."""

Listen = Callable[[bool, bool], Heard | None]
"""``listen(tempo, key)``: what the audio says, estimating only what is asked (None: failed)."""

SHORT_S = 1.5
"""Shorter clips are one-shots when nothing else tells (seconds)."""
LONG_S = 4.0
"""Clips this long are loops when nothing else tells (seconds): held pads and beds."""
PROMOTE_MIN = 0.3
"""Least tempo confidence for a clip to become a loop by its pulse (in whole bars)."""


@dataclass(frozen=True)
class MetadataRules:
    """The vocabularies (``ingest.genres``, ``ingest.instruments``) and the instruments never
    asked for a key (``ingest.unpitched_instruments``)."""

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
# fmt: off
AUDIO_FIELDS = (
    "bpm", "bpm_source", "bpm_confidence", "key", "key_source", "key_confidence",
    "kind", "kind_source", "analysis_version", "peaks",
)
# fmt: on
"""The payload fields :func:`hear` returns: stated facts, and what the audio says of the rest."""


@dataclass(frozen=True)
class AudioFacts:
    """What decoding told about a file."""

    duration_s: float
    sample_rate: int
    channels: int
    format: str


@dataclass(frozen=True)
class NameFacts:
    """What a file's names and own tags state, before any audio is heard: ``names`` are the
    stem, then the folders from the nearest up; ``pack`` the first folder under the root;
    ``kind`` what the tags say; ``tags`` the folder words below the pack and the tag words."""

    names: list[str]
    pack: str | None
    genre: str | None
    instrument: str | None
    bpm: Stated
    key: Stated
    kind: str | None
    tags: list[str]


def name_facts(
    path: Path, root: Path | None, tags: FileTags, rules: MetadataRules | None
) -> NameFacts:
    """The facts the names and tags of ``path`` (found under library ``root``) state; without
    ``rules`` the vocabularies are not read (genre and instrument None)."""
    relative = Path(path.name)
    if root is not None and path.is_relative_to(root):
        relative = path.relative_to(root)
    folders, stem = list(relative.parts[:-1]), path.stem
    nearest_first = [stem, *reversed(folders)]
    name_bpm = parse_bpm(*nearest_first)
    name_key = parse_key(*nearest_first)
    tag_words = {" ".join(tokens(f)) for f in folders[1:]} | {w for w in tags.words if w}
    genre_names = (*(t for t in (tags.genre,) if t), *folders, stem)
    return NameFacts(
        names=nearest_first,
        pack=folders[0] if folders else None,
        genre=rules.genres.find(*genre_names) if rules else None,
        instrument=rules.instruments.find(*nearest_first) if rules else None,
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
    """The descriptive payload fields of one file. ``root``: the outermost library root
    holding it (None: the file name only); ``listen``: None when the audio is not at hand."""
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
    """The :data:`AUDIO_FIELDS` (shared with ``timbre reanalyse``). ``names``: the stem,
    then the folders nearest up; ``ask_key``: False for drums (a cymbal looks "tonal")."""
    (bpm_value, bpm_source), (key_value, key_source) = bpm, key
    bpm_confidence = key_confidence = None
    # A one-shot never gets a tempo; anything else may prove a loop by its pulse.
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
    """``(kind, kind_source)`` from the evidence, in the order of the module's list."""
    bpm_value, bpm_source = bpm
    said_by_folders = stated_kind(names[1:])
    evidence = (
        pre_kind(names, tagged),
        ("loop", bpm_source or "name") if bpm_value and whole_bars(duration_s, bpm_value) else None,
        _by_sound(tempo, envelope),
        ("one_shot", "duration") if duration_s < SHORT_S else None,
        (said_by_folders, "name") if said_by_folders is not None else None,
    )
    fallback = ("loop" if duration_s >= LONG_S else "one_shot"), "duration"
    return next((found for found in evidence if found is not None), fallback)


def _by_sound(tempo: TempoEstimate | None, envelope: Envelope | None) -> tuple[str, str] | None:
    if envelope is not None and envelope.decays:
        return "one_shot", "audio"
    if tempo is not None:
        bars = tempo.bars is not None and tempo.confidence >= PROMOTE_MIN
        if bars or (envelope is not None and envelope.repeats):
            return "loop", "audio"
    return None
