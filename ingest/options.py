"""What one ingest job is asked to do, and what it needs from the models."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from timbre.audio.resample import Resampler

Profile = Literal["sequential", "parallel"]


class Embedder(Protocol):
    """The audio side of the models (``timbre.embedding.family.AudioSide``)."""

    sample_rate: int
    resampler: Resampler

    def features(self, waveforms: Sequence[np.ndarray]) -> list[np.ndarray]: ...
    def embed_features(self, features: Sequence[np.ndarray]) -> np.ndarray: ...


@dataclass(frozen=True)
class JobOptions:
    """How to run one job (see ``timbre ingest --help``)."""

    roots: tuple[Path, ...]
    profile: Profile = "parallel"
    workers: int = 1
    batch_files: int = 16
    batch_audio_s: float = 240.0
    shard: tuple[int, int] | None = None
    prune: bool = False
    dry_run: bool = False
    rehash: bool = False
    interactive: bool | None = None
    progress_interval_s: float = 10.0
    # A watcher's batch: read only these files or folders under the roots (None: walk the
    # roots), and drop the stored paths at or below ``gone`` that the disk confirms are gone.
    # Either one limits the prune to these paths, whatever ``prune`` says.
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
    exit_code: int


def in_shard(sha256: str, shard: tuple[int, int] | None) -> bool:
    """Deterministic split by content: shard ``i`` of ``n`` owns hashes with value % n == i."""
    if shard is None:
        return True
    index, total = shard
    return int(sha256[:16], 16) % total == index
