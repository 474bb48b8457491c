"""The seam between a model family and the rest of Timbre.

A *family* is everything that turns audio and text into vectors of one shared space: its
preprocessing, its models on either runtime, its identity (hub ids, revisions, pipeline
version), its random-weight bundle and its ONNX exports. Ingest and search see only what is
declared here; :mod:`timbre.embedding.families` maps ``models.family`` to an implementation.
This module imports no family, so a family may import it freely (no import cycle).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from timbre.audio.resample import Resampler
from timbre.embedding.common import TextEmbedder
from timbre.embedding.files import ModelFiles, Part
from timbre.embedding.info import ModelInfo
from timbre.settings import ModelsSettings

if TYPE_CHECKING:
    from timbre.embedding.onnx_backend import Spec

Size = Literal["tiny", "full"]
Side = Literal["audio", "text"]


class AudioSide(Protocol):
    """A family's audio path, as ingest and search call it.

    ``features`` is the per-track, cacheable half (for clamp3, MERT window vectors; for clap,
    the projected window embeddings); ``embed_features`` turns a batch of them into
    L2-normalised vectors. ``embed`` is the two in one.
    """

    info: ModelInfo
    runtime: str
    resampler: Resampler
    """How decoded files reach :attr:`sample_rate` (:data:`timbre.audio.resample.Resampler`)."""

    @property
    def sample_rate(self) -> int: ...
    @property
    def dim(self) -> int: ...
    def features(self, waveforms: Sequence[np.ndarray]) -> list[np.ndarray]: ...
    def embed_features(self, features: Sequence[np.ndarray]) -> np.ndarray: ...
    def embed(self, waveforms: Sequence[np.ndarray]) -> np.ndarray: ...


class Family(Protocol):
    """One model family (see the module docstring)."""

    name: str
    """The value of ``models.family``."""
    parts: tuple[Part, ...]
    """Sub-folders of a bundle this family reads (``DIR/<part>/``)."""
    audio_parts: tuple[Part, ...]
    text_parts: tuple[Part, ...]
    pipeline_version: str
    """How vectors are computed; changes whenever any rule of the family changes them."""
    sample_rate: int
    """The rate audio is decoded at for this family (Hz)."""

    def describe(self, settings: ModelsSettings, files: ModelFiles) -> ModelInfo:
        """Identity and dimension of the configured models, without loading them."""
        ...

    def decoding(self, files: ModelFiles) -> tuple[int, Resampler]:
        """The rate files are decoded at and how they get there, without loading models."""
        ...

    def load_audio(self, settings: ModelsSettings, files: ModelFiles, batches: bool) -> AudioSide:
        """The audio path. ``batches``: calls carry many files (a parallel ingest job)."""
        ...

    def load_text(self, settings: ModelsSettings, files: ModelFiles) -> TextEmbedder: ...

    def write_random(self, target: Path, size: Size, seed: int) -> None:
        """Random weights in exactly the hub layout, under ``target/<part>/``."""
        ...

    def export_specs(self, settings: ModelsSettings, files: ModelFiles, side: Side) -> list[Spec]:
        """How to export, gate and load each ONNX graph of one side."""
        ...
