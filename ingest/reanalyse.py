"""Give already indexed samples the facts of the current audio analysis, without re-embedding.

A point indexed before the audio analysis existed (or by an older ``analysis_version``) has
no BPM or key from the sound, no sources and no waveform peaks. Ingest never revisits content
it has indexed, so ``timbre reanalyse`` scrolls the collection for such points, decodes each
one's file (the first of its ``paths`` still readable), runs the same rules as ingest
(:func:`ingest.metadata.hear`: stated values win, loops get a BPM, the clearly pitched a key)
and writes back only the fields that changed, one batched payload update per page. Vectors,
labels and every other field stay as they are.

A stored BPM or key without a source predates the analysis, so a name or the file's tags
stated it: it is kept, and its source is re-derived (``tags`` when the file's own tags carry
it, else ``name``). A value an older analysis heard (source ``audio``) is heard again.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.metadata import Stated, hear
from ingest.names import guess_kind
from ingest.options import Limits
from ingest.prepare import audio_listener
from ingest.tags import read_tags
from timbre.audio.analysis import ANALYSIS_VERSION
from timbre.audio.decode import decode_file
from timbre.errors import AudioError
from timbre.store import Record, VectorStore
from timbre.store.rewrite import rewrite_payloads

log = logging.getLogger("timbre.ingest")

AUDIO_FIELDS = (
    "bpm",
    "bpm_source",
    "bpm_confidence",
    "key",
    "key_source",
    "key_confidence",
    "kind",
    "analysis_version",
    "peaks",
)
"""The payload fields a reanalysis may rewrite (what :func:`~ingest.metadata.hear` returns)."""

_READ = ("path", "paths", "duration_s", "instrument", "instrument_source", *AUDIO_FIELDS)
MAX_REPORTED_FAILURES = 20
"""Failures listed in the report (all are counted and logged)."""


@dataclass
class ReanalyseReport:
    """What a reanalysis did.

    Attributes:
        points: points in the collection.
        current: points already analysed by this ``analysis_version`` (skipped).
        analysed: points whose audio was analysed.
        changed: points whose payload was rewritten.
        gained_bpm: points that had no BPM and got one from the audio.
        gained_key: points that had no key and got one from the audio.
        failed: points whose file could not be read or decoded (left unchanged).
        failures: the first :data:`MAX_REPORTED_FAILURES` of them, ``{id, path, reason}``.
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
    failed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    sources: dict[str, dict[str, int]] = field(default_factory=dict)
    analysis_version: str = ANALYSIS_VERSION
    seconds: float = 0.0
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _stated(payload: Mapping[str, Any], field: str, tagged: Callable[[], bool]) -> Stated:
    """The stored value of ``field`` if a name or tag stated it, with its source."""
    value, source = payload.get(field), payload.get(f"{field}_source")
    if value is None or source == "audio":
        return None, None
    if source is None:  # written before sources were recorded: only names and tags existed
        source = "tags" if tagged() else "name"
    return value, source


def reanalyse_payload(
    payload: Mapping[str, Any], limits: Limits, unpitched: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The audio fields of one stored payload as the current analysis gives them.

    Args:
        payload: the stored payload (at least ``paths``, ``duration_s`` and the audio fields).
        limits: decoding limits and the analysis rate (the model rate, as at ingest).
        unpitched: instruments never asked a key of (``ingest.unpitched_instruments``), when
            the names gave the instrument (as at ingest, before any label could).

    Returns:
        Every field of :data:`AUDIO_FIELDS`.

    Raises:
        AudioError: no path of the point can be decoded (the cause of the last one tried).
    """
    paths = [p for p in (payload.get("paths") or [payload.get("path")]) if p]
    readable = next((Path(p) for p in paths if Path(p).is_file()), None)
    if readable is None:
        where = paths[0] if paths else "(no path)"
        reason = f"none of its {len(paths)} path(s) is a readable file"
        raise AudioError(where, reason, code="missing")
    audio = decode_file(
        readable,
        sample_rate=limits.sample_rate,
        max_duration_s=limits.max_duration_s,
        max_file_bytes=limits.max_file_bytes,
        resampler=limits.resampler,
    )
    file_tags: list[Any] = []

    def tags() -> Any:  # read only when an old value's source must be re-derived
        if not file_tags:
            file_tags.append(read_tags(readable))
        return file_tags[0]

    bpm = _stated(payload, "bpm", lambda: bool(tags().bpm))
    key = _stated(payload, "key", lambda: bool(tags().key))
    # The folders above the library root are not known here; the words about a kind sit in
    # the file's own and nearest folder names, which are.
    folders = [p for p in readable.parent.parts if p != readable.anchor]
    names = [readable.stem, *reversed(folders)]
    kind = payload.get("kind")
    if kind is None or payload.get("bpm_source") == "audio":  # the kind may have come from it
        kind = guess_kind(names, audio.duration_s, bpm[0])
    listen = audio_listener(str(readable), audio.samples, audio.sample_rate, audio.duration_s)
    named = payload.get("instrument") if payload.get("instrument_source") != "audio" else None
    return hear(
        names,
        audio.duration_s,
        kind,
        bpm=bpm,
        key=key,
        listen=listen,
        ask_key=named not in unpitched,
    )


def reanalyse(
    store: VectorStore,
    limits: Limits,
    *,
    batch_size: int,
    unpitched: frozenset[str] = frozenset(),
    everything: bool = False,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ReanalyseReport:
    """Analyse the audio of every point the current analysis has not seen, and store it.

    Args:
        store: the live collection.
        limits: decoding limits and the analysis rate.
        batch_size: points per scroll page and per payload update.
        unpitched: instruments never asked a key of (``ingest.unpitched_instruments``).
        everything: analyse points already at the current version too.
        dry_run: analyse and report, write nothing.
        progress: called with the number of points seen after each page.

    A file that cannot be read or decoded is counted, logged and left as it was; the run
    goes on.
    """
    started = time.perf_counter()
    report = ReanalyseReport(dry_run=dry_run)
    sources: dict[str, Counter[str]] = {"bpm": Counter(), "key": Counter()}

    def revise(page: list[Record]) -> dict[str, dict[str, Any]]:
        updates: dict[str, dict[str, Any]] = {}
        for record in page:
            old = record.payload
            if old.get("analysis_version") == ANALYSIS_VERSION and not everything:
                report.current += 1
                continue
            try:
                new = reanalyse_payload(old, limits, unpitched)
            except (AudioError, OSError) as exc:
                reason = str(exc)
                log.warning("reanalyse: %s: %s", old.get("path"), reason)
                report.failed += 1
                if len(report.failures) < MAX_REPORTED_FAILURES:
                    report.failures.append(
                        {"id": record.id, "path": str(old.get("path")), "reason": reason}
                    )
                continue
            report.analysed += 1
            report.gained_bpm += old.get("bpm") is None and new["bpm"] is not None
            report.gained_key += old.get("key") is None and new["key"] is not None
            for fact in ("bpm", "key"):
                sources[fact][str(new[f"{fact}_source"])] += 1
            changed = {k: v for k, v in new.items() if old.get(k) != v}
            if changed:
                updates[record.id] = changed
        return updates

    done = rewrite_payloads(
        store, revise, fields=_READ, batch_size=batch_size, dry_run=dry_run, progress=progress
    )
    report.points, report.changed = done.points, done.changed
    report.sources = {fact: dict(c.most_common()) for fact, c in sources.items()}
    report.seconds = round(time.perf_counter() - started, 3)
    return report
