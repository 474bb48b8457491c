"""What one ingest job is asked to do, and what it needs from the models."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from timbre.audio.resample import Resampler
from timbre.errors import ExitCode

Profile = Literal["sequential", "parallel"]


class Embedder(Protocol):
    """The audio side of the models (``timbre.embedding.family.AudioSide``)."""

    sample_rate: int
    resampler: Resampler

    def features(self, waveforms: Sequence[np.ndarray]) -> list[np.ndarray]: ...
    def embed_features(self, features: Sequence[np.ndarray]) -> np.ndarray: ...


@dataclass(frozen=True)
class JobOptions:
    """How to run one job: a request's options over the ``ingest`` settings
    (:func:`ingest.job.options_from_settings`; ``timbre ingest --help`` says what each does)."""

    roots: tuple[Path, ...]
    profile: Profile
    workers: int
    batch_files: int
    batch_audio_s: float
    progress_interval_s: float
    shard: tuple[int, int] | None = None
    prune: bool = False
    dry_run: bool = False
    rehash: bool = False
    interactive: bool | None = None
    # A watcher's batch: read only ``changed`` (None: walk the roots) and prune only these
    # and ``gone``, whatever ``prune`` says.
    changed: tuple[Path, ...] | None = None
    gone: tuple[Path, ...] = ()

    @property
    def targeted(self) -> bool:
        """True for a batch of named changes rather than a walk of whole roots."""
        return self.changed is not None or bool(self.gone)


@dataclass(frozen=True)
class Limits:
    """Audio limits and the model rate, passed to decoding workers."""

    sample_rate: int
    max_duration_s: float
    max_file_bytes: int
    resampler: Resampler = "sinc"
    """How files reach ``sample_rate`` (the model family's choice)."""


@dataclass
class JobResult:
    summary: dict[str, Any]
    exit_code: ExitCode


def in_shard(sha256: str, shard: tuple[int, int] | None) -> bool:
    """Deterministic split by content: shard ``i`` of ``n`` owns hashes with value % n == i."""
    if shard is None:
        return True
    index, total = shard
    return int(sha256[:16], 16) % total == index
