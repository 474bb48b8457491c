"""``timbre reanalyse``: give indexed samples the current facts, without re-embedding.

Name facts are derived again by the current rules when the vocabularies are given; audio facts
are heard again when ``analysis_version`` is older, with ``--all``, or when what the names
state changed. Only changed fields are written; an unreadable file is counted and left as is.
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
from ingest.metadata import (
    AUDIO_FIELDS,
    NAME_FIELDS,
    MetadataRules,
    NameFacts,
    Stated,
    hear,
    name_facts,
    pre_kind,
)
from ingest.names import stated_kind
from ingest.options import Limits
from ingest.tags import FileTags, is_tool_stamp, read_tags
from ingest.workers import audio_listener, decode
from timbre.audio.analysis import ANALYSIS_VERSION
from timbre.errors import AudioError
from timbre.labels.labeller import named_instrument
from timbre.store import Record, VectorStore
from timbre.store.pathtext import path_from_text, path_text

log = logging.getLogger("timbre.ingest")

_READ = ("path", "paths", "duration_s", *NAME_FIELDS, *AUDIO_FIELDS)
MAX_REPORTED_FAILURES = 20
"""Failures listed in the report (all are counted and logged)."""


@dataclass
class ReanalyseReport:
    """What a reanalysis did: ``current`` points were not heard again, ``analysed`` were;
    ``renamed`` and ``sources`` count changed name facts and fact sources."""

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
    """The first stored path (text form) whose file is readable, and its real path."""
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
    if facts.instrument is not None:
        out.update(instrument=facts.instrument, instrument_source="name")
    elif named_instrument(payload):  # the names no longer state it; relabel fills it from the sound
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
    """One stored payload's :data:`NAME_FIELDS` (with ``rules``) and, when heard, its
    :data:`AUDIO_FIELDS` by the current rules; AudioError when no path can be decoded.
    ``unpitched`` applies without ``rules``; ``hear_audio``: even if no stated fact changed."""
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
    audio = decode(readable, limits)
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
    """Give every point the current name facts and, where due (or for ``everything``), the
    current audio facts (arguments as :func:`reanalyse_payload`); ``progress`` gets the points
    seen after each page. An unreadable file is counted, logged and left as it was."""
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
