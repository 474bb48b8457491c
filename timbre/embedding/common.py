"""What every family shares: normalisation, the text side's wrapper, and the probe inputs.

Torch-free, and imports no family: the families import it, never the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from timbre.embedding.info import ModelInfo

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


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def probe_waveforms(sample_rate: int) -> list[np.ndarray]:
    """Deterministic probe clips for the ONNX gate: a kick, a hat, a chord loop, a quiet tail."""
    rng = np.random.default_rng(1234)
    t = lambda s: np.arange(int(s * sample_rate)) / sample_rate  # noqa: E731
    kick_t = t(0.4)
    kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-kick_t * 30)) * kick_t) * np.exp(-kick_t * 8)
    hat = rng.standard_normal(int(0.12 * sample_rate)) * np.exp(-t(0.12) * 40)
    loop_t = t(7.0)
    chord = np.mean([np.sin(2 * np.pi * f * loop_t) for f in (220.0, 277.2, 329.6)], axis=0)
    quiet = np.concatenate([chord[: 3 * sample_rate], 1e-4 * rng.standard_normal(3 * sample_rate)])
    return [x.astype(np.float32) for x in (kick, hat, chord, quiet)]


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
