"""What the ingest job's decoding processes do to one file (module-level, so that it pickles).

Decode, analyse and describe one content (:func:`prepare`), or hash one file
(:func:`hash_file`); :class:`ingest.pipeline.IngestJob` runs these in its worker pool and
feeds the results to its model loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ingest.metadata import AudioFacts, MetadataRules, describe
from ingest.options import Limits
from ingest.report import Failure
from ingest.tags import read_tags
from timbre.audio.analysis import Heard, analyse
from timbre.audio.decode import decode_file
from timbre.errors import AudioError
from timbre.fsutil import sha256_file
from timbre.store.pathtext import path_from_text

log = logging.getLogger("timbre.ingest")


@dataclass
class Prepared:
    """One file, ready for the model loop (or failed)."""

    sha256: str
    paths: list[str]
    payload: dict[str, Any] = field(default_factory=dict)
    samples: np.ndarray | None = None
    audio_s: float = 0.0
    failure: Failure | None = None


def prepare(
    sha256: str,
    found: Sequence[tuple[str, str]],
    limits: Limits,
    rules: MetadataRules,
    keep_samples: bool,
) -> Prepared:
    """Decode, analyse and describe one content.

    The audio is decoded even when its MERT features are cached: the tempo, key and
    waveform peaks are computed from it here (decoding is ~2% of the work), so a point
    built from cached features carries the same facts as one embedded afresh.

    Args:
        sha256: the content hash.
        found: ``(path, outermost root)`` pairs (stored text forms) where this content lies;
            the first path sorted is described.
        limits: decoding limits.
        rules: metadata vocabularies.
        keep_samples: False when MERT features are cached: the samples are not sent back.
    """
    # The first path sorted is the payload's ``path`` and gives the names, as after any move
    # (ingest.derive).
    first, root_text = min(found)
    path, root = Path(first), Path(root_text)  # text forms, for names and reports
    real = path_from_text(first)
    paths = sorted(p for p, _ in found)
    stage = "decode"
    try:
        audio = decode_file(
            real,
            sample_rate=limits.sample_rate,
            max_duration_s=limits.max_duration_s,
            max_file_bytes=limits.max_file_bytes,
            resampler=limits.resampler,
        )
        facts = AudioFacts(audio.duration_s, audio.source_sample_rate, audio.channels, audio.format)
        stage = "metadata"
        listen = audio_listener(str(path), audio.samples, audio.sample_rate, audio.duration_s)
        payload = describe(path, root, facts, read_tags(real), rules, listen=listen)
    except AudioError as exc:
        return Prepared(sha256, paths, failure=Failure(str(path), stage, exc.code, exc.reason))
    except Exception as exc:  # a bad file must never stop the job
        return Prepared(
            sha256, paths, failure=Failure(str(path), stage, type(exc).__name__, str(exc))
        )
    samples = audio.samples if keep_samples else None
    return Prepared(sha256, paths, payload=payload, samples=samples, audio_s=facts.duration_s)


def audio_listener(
    path: str, samples: np.ndarray, sample_rate: int, duration_s: float
) -> Callable[[bool, bool], Heard | None]:
    """The audio analysis of decoded samples, for :func:`describe`; never fails the file."""

    def listen(tempo: bool, key: bool) -> Heard | None:
        try:
            return analyse(samples, sample_rate, duration_s, tempo=tempo, key=key)
        except Exception:  # an analysis fault leaves the facts unknown, never loses the file
            log.exception("audio analysis failed: %s", path)
            return None

    return listen


def hash_file(path: str) -> tuple[str, str | None, str | None]:
    """``(path, content hash, None)``, or ``(path, None, why)`` when the file cannot be read."""
    try:
        return path, sha256_file(path_from_text(path)), None
    except OSError as exc:
        return path, None, f"{type(exc).__name__}: {exc}"
