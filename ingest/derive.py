"""The facts a point's paths give, derived again whenever its paths or its roots change.

Name facts come from the primary ``path`` (first sorted) below the outermost library root.
After a move, copy, prune or a parent root indexed later, :class:`Rederiver` runs the same
:func:`~ingest.metadata.describe` and writes back what differs, without embedding; the audio's
answers are recalled from the payload where that settles the facts, else the file is heard.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.metadata import (
    AUDIO_FIELDS,
    NAME_FIELDS,
    AudioFacts,
    Listen,
    MetadataRules,
    describe,
    name_facts,
)
from ingest.options import Limits
from ingest.tags import FileTags, read_tags
from ingest.workers import audio_listener, decode
from timbre.audio.analysis import Envelope, Heard
from timbre.audio.key import KeyEstimate
from timbre.audio.tempo import TempoEstimate
from timbre.errors import AudioError
from timbre.fsutil import within
from timbre.labels import Labeller
from timbre.labels.labeller import named_instrument
from timbre.store import Collection, Point
from timbre.store.pathtext import path_from_text

log = logging.getLogger("timbre.ingest")

DERIVED_FROM_PATHS = (*NAME_FIELDS, *AUDIO_FIELDS)
"""Payload fields a change of paths may change (``dirs`` follows ``paths`` in the store)."""


def root_of(path: str, roots: Iterable[str]) -> str | None:
    """The outermost of ``roots`` that holds ``path`` (stored text forms), None when none does
    (the outermost, so a subfolder indexed before its parent gives what the parent gives)."""
    return min((r for r in roots if within(path, r)), key=len, default=None)


def primary(paths: Iterable[str], roots: Iterable[str]) -> tuple[str, str | None]:
    """The path a point's facts come from (the payload's ``path``: the first sorted) and its
    outermost root."""
    first = min(paths)
    return first, root_of(first, roots)


_PROBE_TEMPO = TempoEstimate(120.0, 1.0, 1.0, 4, None, 120.0)
_PROBE_KEY = KeyEstimate("C", 1.0, 1.0, 1.0, 1.0)


def _recall(payload: Mapping[str, Any], unpitched: frozenset[str], *, probe: bool) -> Listen:
    """A listener answering what the audio said at ingest, as stored in ``payload``; the
    unknown gets nothing, or with ``probe`` a made-up confident answer (facts equal both
    ways: the answer does not matter, else the file is heard again)."""

    def listen(tempo: bool, key: bool) -> Heard | None:
        version, peaks = payload.get("analysis_version"), payload.get("peaks")
        if version is None or peaks is None:
            return None  # the analysis failed on this audio at ingest, and would again
        heard_tempo: TempoEstimate | None = None
        heard_key: KeyEstimate | None = None
        if tempo:
            if payload.get("bpm_source") == "audio" and payload.get("bpm"):
                bpm, confidence = float(payload["bpm"]), float(payload["bpm_confidence"] or 0)
                bars = 4 if probe else None
                heard_tempo = TempoEstimate(bpm, confidence, math.nan, bars, None, bpm)
            elif not (payload.get("kind") == "loop" and payload.get("bpm_source") is None):
                heard_tempo = _PROBE_TEMPO if probe else None
        if key:
            if payload.get("key_source") == "audio" and payload.get("key"):
                confidence = float(payload.get("key_confidence") or 0)
                heard_key = KeyEstimate(str(payload["key"]), confidence, math.nan, 0.0, 0.0)
            elif not _asked_key(payload, unpitched):
                heard_key = _PROBE_KEY if probe else None
        envelope = _recalled_envelope(payload, probe=probe)
        return Heard(heard_tempo, heard_key, str(peaks), envelope, str(version))

    return listen


_DECAYING = Envelope(reattacks=0, end_db=-60.0, fall_db=30.0)
_REPEATING = Envelope(reattacks=8, end_db=0.0, fall_db=0.0)
_NEUTRAL = Envelope(reattacks=0, end_db=0.0, fall_db=0.0)


def _recalled_envelope(payload: Mapping[str, Any], *, probe: bool) -> Envelope | None:
    """An envelope giving the kind verdict the sound gave at ingest, as far as the payload
    tells (a kind the tags or names decided hides it: unknown, or "decays" for the probe)."""
    kind, source = payload.get("kind"), payload.get("kind_source")
    if source == "audio":
        return _DECAYING if kind == "one_shot" else _REPEATING
    if source == "duration":
        return _NEUTRAL
    return _DECAYING if probe else None


def _asked_key(payload: Mapping[str, Any], unpitched: frozenset[str]) -> bool:
    """Whether ingest asked the audio for a key (so none stored means it heard none):
    unless a name or a tag stated one, or the names called the sound a drum."""
    if payload.get("key_source") in ("tags", "name"):
        return False
    return not (named_instrument(payload) and payload.get("instrument") in unpitched)


@dataclass
class Rederiver:
    """Derives a stored point's path facts anew, as a clean ingest of its current paths would
    (``roots``: every library root known; ``labeller``: instruments from the category)."""

    rules: MetadataRules
    roots: tuple[str, ...]
    limits: Limits
    labeller: Labeller | None = None

    def changes(self, payload: Mapping[str, Any], *, full: bool) -> dict[str, Any]:
        """The :data:`DERIVED_FROM_PATHS` that differ from a stored ``payload`` ({} when
        underivable: never stops a job). Not ``full``: a cheap check runs first."""
        try:
            return self._changes(payload, full=full)
        except Exception:  # one odd payload or file must not end the job
            log.exception("cannot re-derive the facts of %s", payload.get("path"))
            return {}

    def _changes(self, payload: Mapping[str, Any], *, full: bool) -> dict[str, Any]:
        if any(payload.get(k) is None for k in ("duration_s", "sample_rate", "channels")):
            return {}  # not described by ingest (nothing was decoded): nothing to derive from
        path, root = primary(payload.get("paths") or [payload["path"]], self.roots)
        real = path_from_text(path)
        if not real.is_file() or (not full and self._current(payload, path, root, real)):
            return {}
        tags = read_tags(real)
        unpitched = self.rules.unpitched
        facts = self._derive(payload, path, root, tags, _recall(payload, unpitched, probe=False))
        if facts != self._derive(
            payload, path, root, tags, _recall(payload, unpitched, probe=True)
        ):
            try:  # the stored answers do not settle it: hear the file again
                listen = self._hear(real, path)
            except (AudioError, OSError) as exc:
                log.warning("cannot re-derive the facts of %s: %s", path, exc)
                return {}
            facts = self._derive(payload, path, root, tags, listen)
        return _differing(payload, facts)

    def _current(self, payload: Mapping[str, Any], path: str, root: str | None, real: Path) -> bool:
        """The cheap check of unchanged paths: a screen, then derived with recalled audio and
        the tags the payload implies, failing that the file's."""
        if self._looks_current(payload, path, root):
            return True  # what a re-run of a library mostly is
        guessed = FileTags(
            bpm=payload.get("bpm") if payload.get("bpm_source") == "tags" else None,
            key=payload.get("key") if payload.get("key_source") == "tags" else None,
        )
        return self._consistent(payload, path, root, guessed) or self._consistent(
            payload, path, root, read_tags(real)
        )

    @staticmethod
    def _looks_current(payload: Mapping[str, Any], path: str, root: str | None) -> bool:
        """Do the pack, the folder tags and a BPM or key the names state match the path?
        (Not the vocabularies: ~1 ms a point, too slow for every point of every re-run.)"""
        named = name_facts(Path(path), Path(root) if root is not None else None, FileTags(), None)
        if payload.get("path") != path or payload.get("pack") != named.pack:
            return False
        if not set(named.tags) <= set(payload.get("tags") or ()):
            return False
        bpm = round(named.bpm[0], 3) if named.bpm[0] is not None else None
        for field, stated in (("bpm", bpm), ("key", named.key[0])):
            source = payload.get(f"{field}_source")
            if source == "name" and stated != payload.get(field):
                return False
            if source not in ("name", "tags") and stated is not None:
                return False
        return True

    def _consistent(
        self, payload: Mapping[str, Any], path: str, root: str | None, tags: FileTags
    ) -> bool:
        listen = _recall(payload, self.rules.unpitched, probe=False)
        return not _differing(payload, self._derive(payload, path, root, tags, listen))

    def _hear(self, real: Path, path: str) -> Listen:
        # Ingest's own decode: the family's rate and resampler, so what is heard is what
        # ingest heard (another resampler moves the peaks and the tempo's confidence).
        audio = decode(real, self.limits)
        return audio_listener(path, audio.samples, audio.sample_rate, audio.duration_s)

    def _derive(
        self,
        payload: Mapping[str, Any],
        path: str,
        root: str | None,
        tags: FileTags,
        listen: Listen,
    ) -> dict[str, Any]:
        """The :data:`DERIVED_FROM_PATHS` ingest would store for the point at ``path``."""
        audio = AudioFacts(
            float(payload["duration_s"]),
            int(payload["sample_rate"]),
            int(payload["channels"]),
            str(payload.get("format") or ""),
        )
        root_path = Path(root) if root is not None else None
        facts = describe(Path(path), root_path, audio, tags, self.rules, listen=listen)
        facts["instrument_source"] = "name" if facts["instrument"] else None
        if facts["instrument"] is None:
            facts.update(self._audio_instrument(payload))
        return {k: facts[k] for k in DERIVED_FROM_PATHS if k in facts}

    def _audio_instrument(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The instrument the sound gives when the names give none (as labelling at ingest)."""
        if self.labeller is not None:
            instrument = self.labeller.instrument_of(payload.get("category"))
            return {"instrument": instrument, "instrument_source": "audio" if instrument else None}
        if payload.get("instrument_source") == "audio":  # no labeller here: keep the label's
            return {"instrument": payload.get("instrument"), "instrument_source": "audio"}
        return {}


def _differing(payload: Mapping[str, Any], facts: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in facts.items() if payload.get(k) != v}


def rederive(store: Collection, rederiver: Rederiver, ids: Iterable[str], batch: int = 256) -> int:
    """Derive the path facts of the points ``ids`` (whose paths changed) anew, in full, and
    write what differs; returns how many points changed."""
    wanted = sorted(set(ids))
    changed = 0
    for start in range(0, len(wanted), batch):
        updates: dict[str, dict[str, Any]] = {}
        for record in store.retrieve(wanted[start : start + batch]):
            if fields := rederiver.changes(record.payload, full=True):
                updates[record.id] = fields
        changed += rewrite(store, updates)
    return changed


def rewrite(store: Collection, updates: Mapping[str, Mapping[str, Any]]) -> int:
    """Merge ``updates`` (id -> fields) into the stored points; returns how many were written.
    Whole points, vectors and all: a partial payload update drops a field set to None."""
    records = store.retrieve(list(updates), with_vectors=True)
    return store.upsert(
        [
            Point(r.id, r.vector, {**r.payload, **updates[r.id]})
            for r in records
            if r.vector is not None
        ]
    )
