"""The seam between a model family and the rest of Timbre, and what every family shares.

A *family* turns audio and text into vectors of one shared space. Ingest and search see only
what is declared here; :mod:`timbre.embedding.embedder` picks the configured family.
Torch-free, and imports no family, so every family may import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from timbre.audio.resample import Resampler
from timbre.embedding.files import ModelFiles, Part
from timbre.embedding.info import ModelInfo
from timbre.settings_models import ModelsSettings

if TYPE_CHECKING:
    from timbre.embedding.onnx_backend import Spec

Size = Literal["tiny", "full"]
Side = Literal["audio", "text"]

PROBE_TEXTS = (
    "punchy techno kick",
    "warm atmospheric pad",
    "crispy closed hi-hat, 808 style",
    "dark rolling bassline in F minor at 124 BPM",
    "vocal chop\nwith reverb tail",
    "シンセのリード",
    "x",
)
"""Fixed inputs on which an ONNX export must agree with PyTorch."""


def probe_waveforms(sample_rate: int) -> list[np.ndarray]:
    """Deterministic probe clips for the ONNX gate: a kick, a hat, a chord loop, a quiet tail."""
    rng = np.random.default_rng(1234)

    def t(seconds: float) -> np.ndarray:
        return np.arange(int(seconds * sample_rate)) / sample_rate

    kick_t = t(0.4)
    kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-kick_t * 30)) * kick_t) * np.exp(-kick_t * 8)
    hat = rng.standard_normal(int(0.12 * sample_rate)) * np.exp(-t(0.12) * 40)
    loop_t = t(7.0)
    chord = np.mean([np.sin(2 * np.pi * f * loop_t) for f in (220.0, 277.2, 329.6)], axis=0)
    quiet = np.concatenate([chord[: 3 * sample_rate], 1e-4 * rng.standard_normal(3 * sample_rate)])
    return [x.astype(np.float32) for x in (kick, hat, chord, quiet)]


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    unit: np.ndarray = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


def split_rows(vectors: np.ndarray, counts: Sequence[int]) -> list[np.ndarray]:
    """``vectors`` cut into consecutive blocks of ``counts`` rows (one block per clip)."""
    return np.split(vectors, np.cumsum(counts)[:-1]) if counts else []


class TextEncoder(Protocol):
    """A family's text tower on either runtime."""

    dim: int

    def encode(self, texts: Sequence[str], max_batch: int) -> np.ndarray: ...


@dataclass
class TextEmbedder:
    """A family's tokenizer + text tower: text -> L2-normalised vectors."""

    tower: TextEncoder
    info: ModelInfo
    batch_segments: int
    runtime: str = "torch"
    """What runs the text tower: ``torch`` or ``onnxruntime``."""

    @property
    def dim(self) -> int:
        return self.tower.dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised vectors ``[n, dim]``; empty or whitespace-only text is refused."""
        for text in texts:
            if not text.strip():
                raise ValueError("cannot embed empty text")
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalize(self.tower.encode(texts, self.batch_segments))


class AudioSide(Protocol):
    """A family's audio path, as ingest and search call it: ``features`` is the per-track,
    cacheable half, ``embed_features`` turns a batch of them into L2-normalised vectors,
    ``embed`` is the two in one."""

    info: ModelInfo
    runtime: str
    resampler: Resampler
    """How decoded files reach :attr:`sample_rate`."""

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

    def decoding(self, files: ModelFiles) -> tuple[int, Resampler]:
        """The rate files are decoded at and how they get there, without loading models."""

    def load_audio(self, settings: ModelsSettings, files: ModelFiles, batches: bool) -> AudioSide:
        """The audio path. ``batches``: calls carry many files (a parallel ingest job)."""

    def load_text(self, settings: ModelsSettings, files: ModelFiles) -> TextEmbedder: ...

    def write_random(self, target: Path, size: Size, seed: int) -> None:
        """Random weights in exactly the hub layout, under ``target/<part>/``."""

    def export_specs(self, settings: ModelsSettings, files: ModelFiles, side: Side) -> list[Spec]:
        """How to export, gate and load each ONNX graph of one side."""
