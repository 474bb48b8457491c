"""Give already indexed samples the current facts, without re-embedding.

Ingest never revisits content it has indexed, so ``timbre reanalyse`` scrolls the collection
and, for each point, reads its file (the first of its ``paths`` still readable):

- **Name facts** (genre, instrument, pack, tags, and the BPM, key and kind the names or the
  file's own tags state) are derived again by the current rules (:func:`ingest.metadata.name_facts`)
  whenever the vocabularies are given. A fix to the vocabularies or the parsers thus reaches an
  existing index: a genre read from inside a word goes, a kit abbreviation gains its instrument.
  An instrument the names no longer state is cleared (``timbre relabel`` fills it from the
  sound again); one the sound gave (``instrument_source: audio``) gives way to the names.
- **Audio facts** (BPM and key from the sound, the kind, waveform peaks) are heard again when
  the point's ``analysis_version`` is older than the current analysis, when asked for every
  point (``--all``), or when what the names state changed; the rules are ingest's
  (:func:`ingest.metadata.hear`: stated values win, loops get a BPM, the clearly pitched a key).

Only the fields that changed are written, one batched payload update per page. Vectors and
labels stay as they are. A point whose file cannot be read is counted and left unchanged.

A stored BPM or key without a source predates the analysis, so a name or the file's tags
stated it; without the vocabularies, it is kept and its source re-derived (``tags`` when the
file's own tags carry it, else ``name``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.derive import primary
from ingest.kind import pre_kind
from ingest.metadata import (
    AUDIO_FIELDS,
    NAME_FIELDS,
    MetadataRules,
    NameFacts,
    Stated,
    hear,
    name_facts,
)
from ingest.names import stated_kind
from ingest.options import Limits
from ingest.prepare import audio_listener
from ingest.tags import FileTags, is_tool_stamp, read_tags
from timbre.audio.analysis import ANALYSIS_VERSION
from timbre.audio.decode import decode_file
from timbre.errors import AudioError
from timbre.store import Record, VectorStore
from timbre.store.pathtext import path_from_text, path_text

log = logging.getLogger("timbre.ingest")

_READ = ("path", "paths", "duration_s", *NAME_FIELDS, *AUDIO_FIELDS)
MAX_REPORTED_FAILURES = 20
"""Failures listed in the report (all are counted and logged)."""


@dataclass
class ReanalyseReport:
    """What a reanalysis did.

    Attributes:
        points: points in the collection.
        current: points already analysed by this ``analysis_version`` whose audio was not
            heard again (their name facts may still have changed).
        analysed: points whose audio was analysed.
        changed: points whose payload was rewritten.
        gained_bpm: points that had no BPM and got one from the audio.
        gained_key: points that had no key and got one from the audio.
        renamed: name facts that changed, by field (``genre``, ``instrument``, ``kind``...).
        instruments_cleared: points whose names no longer state their stored instrument
            (``timbre relabel`` fills it from the sound).
        failed: points whose file could not be read or decoded (left unchanged).
        failures: the first :data:`MAX_REPORTED_FAILURES` of them, ``{id, path, reason}``.
        sources: per fact (``bpm``, ``key``, ``kind``), how many analysed points got it how.
        analysis_version: the version written.
        seconds: wall time.
        dry_run: nothing was written.
    """

    points: int = 0
    current: int = 0
    analysed: int = 0
    changed: int = 0
    gained_bpm: int = 0
    gained_key: int = 0
    renamed: dict[str, int] = field(default_factory=dict)
    instruments_cleared: int = 0
    failed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    sources: dict[str, dict[str, int]] = field(default_factory=dict)
    analysis_version: str = ANALYSIS_VERSION
    seconds: float = 0.0
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _stored_stated(payload: Mapping[str, Any], fact: str, tagged: Callable[[], bool]) -> Stated:
    """The stored value of ``fact`` if a name or tag stated it, with its source."""
    value, source = payload.get(fact), payload.get(f"{fact}_source")
    if value is None or source == "audio":
        return None, None
    if source is None:  # written before sources were recorded: only names and tags existed
        source = "tags" if tagged() else "name"
    return value, source


def _readable(payload: Mapping[str, Any]) -> tuple[str, Path]:
    """The first stored path (text form) whose file is readable, and its real path.

    Raises:
        AudioError: none is (code ``missing``).
    """
    texts = [p for p in (payload.get("paths") or [payload.get("path")]) if p]
    for text in texts:
        real = path_from_text(text)
        if real.is_file():
            return text, real
    where = texts[0] if texts else "(no path)"
    raise AudioError(where, f"none of its {len(texts)} path(s) is a readable file", code="missing")


def _name_fields(payload: Mapping[str, Any], facts: NameFacts, rooted: bool) -> dict[str, Any]:
    """The name-derived fields as the current rules give them."""
    out: dict[str, Any] = {"genre": facts.genre}
    if rooted:  # the pack and the folder tags start below the root: unknown without it
        out.update(pack=facts.pack, tags=facts.tags)
    else:
        out["tags"] = [t for t in payload.get("tags") or [] if not is_tool_stamp(t)]
    source = payload.get("instrument_source")
    named_before = source == "name" or (source is None and payload.get("instrument"))
    if facts.instrument is not None:
        out.update(instrument=facts.instrument, instrument_source="name")
    elif named_before:  # the names no longer state it; relabel fills it from the sound
        out.update(instrument=None, instrument_source=None)
    return out


def _stated_changed(payload: Mapping[str, Any], facts: NameFacts) -> bool:
    """Whether the names and tags now state a BPM, key or kind other than the stored one."""
    for fact, (value, source) in (("bpm", facts.bpm), ("key", facts.key)):
        stored_source = payload.get(f"{fact}_source")
        was = (payload.get(fact), stored_source) if stored_source in ("tags", "name") else None
        if (was or (None, None)) != ((value, source) if value is not None else (None, None)):
            return True
    said = pre_kind(facts.names, facts.kind)
    if said is not None:
        return (payload.get("kind"), payload.get("kind_source")) != said
    if payload.get("kind_source") in ("tags", "name"):  # the tags or names said; no longer?
        return stated_kind(facts.names[1:]) != payload.get("kind")
    return False


def reanalyse_payload(
    payload: Mapping[str, Any],
    limits: Limits,
    unpitched: frozenset[str] = frozenset(),
    *,
    rules: MetadataRules | None = None,
    roots: Sequence[Path] = (),
    hear_audio: bool = True,
) -> dict[str, Any]:
    """The fields of one stored payload as the current rules give them.

    Args:
        payload: the stored payload (at least ``paths``, ``duration_s`` and the audio fields).
        limits: decoding limits and the analysis rate (the model rate, as at ingest).
        unpitched: instruments never asked a key of (``ingest.unpitched_instruments``), when
            the names gave the instrument (as at ingest, before any label could).
        rules: the vocabularies; None keeps the stored name facts (audio fields only).
        roots: the library roots the data dir indexes (the pack is the first folder below).
        hear_audio: analyse the audio even if no stated fact changed.

    Returns:
        The changed and unchanged values of :data:`NAME_FIELDS` (with ``rules``) and, when
        the audio was heard, of :data:`AUDIO_FIELDS`.

    Raises:
        AudioError: no path of the point can be decoded (the cause of the last one tried).
    """
    text, readable = _readable(payload)
    path = Path(text)
    tags_read: list[FileTags] = []

    def tags() -> FileTags:
        if not tags_read:
            tags_read.append(read_tags(readable))
        return tags_read[0]

    out: dict[str, Any] = {}
    if rules is not None:
        # The names come from the point's primary path below its outermost root, as ingest
        # reads them (ingest.derive); without a root, every folder above the file is read.
        first, root_text = primary(payload.get("paths") or [text], [path_text(r) for r in roots])
        root = Path(root_text) if root_text is not None else None
        facts = name_facts(Path(first), root or Path(path.anchor), tags(), rules)
        names, bpm, key, tagged_kind = facts.names, facts.bpm, facts.key, facts.kind
        out = _name_fields(payload, facts, root is not None)
        named = facts.instrument
        unpitched = rules.unpitched
        hear_audio = hear_audio or _stated_changed(payload, facts)
        if named in unpitched and payload.get("key_source") == "audio":
            # what the names now call a drum keeps no key its sound was heard to have
            out.update(key=None, key_source=None, key_confidence=None)
    else:
        folders = [p for p in path.parent.parts if p != path.anchor]
        names = [path.stem, *reversed(folders)]
        bpm = _stored_stated(payload, "bpm", lambda: bool(tags().bpm))
        key = _stored_stated(payload, "key", lambda: bool(tags().key))
        tagged_kind = None
        named = payload.get("instrument") if payload.get("instrument_source") != "audio" else None
    if not hear_audio:
        return out
    audio = decode_file(
        readable,
        sample_rate=limits.sample_rate,
        max_duration_s=limits.max_duration_s,
        max_file_bytes=limits.max_file_bytes,
        resampler=limits.resampler,
    )
    listen = audio_listener(text, audio.samples, audio.sample_rate, audio.duration_s)
    heard = hear(
        names,
        audio.duration_s,
        bpm=bpm,
        key=key,
        tagged_kind=tagged_kind,
        listen=listen,
        ask_key=named not in unpitched,
    )
    return {**out, **heard}


def reanalyse(
    store: VectorStore,
    limits: Limits,
    *,
    batch_size: int,
    unpitched: frozenset[str] = frozenset(),
    rules: MetadataRules | None = None,
    roots: Sequence[Path] = (),
    everything: bool = False,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ReanalyseReport:
    """Give every point the current name facts and, where due, the current audio facts.

    Args:
        store: the live collection.
        limits: decoding limits and the analysis rate.
        batch_size: points per scroll page and per payload update.
        unpitched: instruments never asked a key of (``ingest.unpitched_instruments``);
            ``rules`` carries its own.
        rules: the vocabularies, to re-derive the name facts; None leaves them as stored.
        roots: the library roots the data dir indexes (``library_roots.json``).
        everything: analyse the audio of points already at the current version too.
        dry_run: analyse and report, write nothing.
        progress: called with the number of points seen after each page.

    A file that cannot be read or decoded is counted, logged and left as it was; the run
    goes on.
    """
    started = time.perf_counter()
    report = ReanalyseReport(dry_run=dry_run)
    sources: dict[str, Counter[str]] = {"bpm": Counter(), "key": Counter(), "kind": Counter()}
    renamed: Counter[str] = Counter()

    def revise(page: list[Record]) -> dict[str, dict[str, Any]]:
        updates: dict[str, dict[str, Any]] = {}
        for record in page:
            old = record.payload
            current = old.get("analysis_version") == ANALYSIS_VERSION and not everything
            if current and rules is None:
                report.current += 1
                continue
            try:
                new = reanalyse_payload(
                    old, limits, unpitched, rules=rules, roots=roots, hear_audio=not current
                )
            except (AudioError, OSError) as exc:
                reason = str(exc)
                log.warning("reanalyse: %s: %s", old.get("path"), reason)
                report.failed += 1
                if len(report.failures) < MAX_REPORTED_FAILURES:
                    report.failures.append(
                        {"id": record.id, "path": str(old.get("path")), "reason": reason}
                    )
                continue
            if "analysis_version" in new:
                report.analysed += 1
                report.gained_bpm += old.get("bpm") is None and new["bpm"] is not None
                report.gained_key += old.get("key") is None and new["key"] is not None
                for fact in ("bpm", "key", "kind"):
                    sources[fact][str(new[f"{fact}_source"])] += 1
            else:
                report.current += 1
            changed = {k: v for k, v in new.items() if old.get(k) != v}
            for name in ("genre", "instrument", "pack", "tags", "kind", "key", "bpm"):
                renamed[name] += name in changed
            report.instruments_cleared += "instrument" in changed and changed["instrument"] is None
            if changed:
                updates[record.id] = changed
        return updates

    done = store.live().rewrite_payloads(
        revise, fields=_READ, batch_size=batch_size, dry_run=dry_run, progress=progress
    )
    report.points, report.changed = done.points, done.changed
    report.sources = {fact: dict(c.most_common()) for fact, c in sources.items()}
    report.renamed = {k: v for k, v in renamed.items() if v}
    report.seconds = round(time.perf_counter() - started, 3)
    return report
