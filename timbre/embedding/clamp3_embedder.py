"""The audio path of the clamp3 family: MERT window vectors, then the CLaMP3 audio tower.

Runs on either runtime: PyTorch (:mod:`timbre.embedding.clamp3_eager`) or ONNX Runtime
(:mod:`timbre.embedding.clamp3_onnx`). This module imports neither torch nor onnxruntime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from timbre.audio.resample import Resampler
from timbre.audio.windows import prepare_windows
from timbre.embedding.common import l2_normalize
from timbre.embedding.info import ModelInfo
from timbre.embedding.runtime import release_memory


class WindowEncoder(Protocol):
    """MERT on either runtime (``MertEncoder``, ``OrtMertEncoder``)."""

    sample_rate: int
    hidden_size: int

    def window_vectors(self, windows: Sequence[np.ndarray], max_batch: int) -> np.ndarray: ...


class FeatureEncoder(Protocol):
    """The CLaMP3 audio tower on either runtime (``AudioTower``, ``OrtAudioTower``)."""

    dim: int
    input_dim: int

    def encode(self, features: Sequence[np.ndarray], max_batch: int) -> np.ndarray: ...


@dataclass
class AudioEmbedder:
    """MERT + CLaMP3 audio tower: mono waveforms at ``sample_rate`` -> vectors.

    Batches across tracks where that is exact: equal-length MERT windows share a forward
    pass, and the segments of many tracks share tower batches.
    """

    mert: WindowEncoder
    tower: FeatureEncoder
    info: ModelInfo
    mert_batch_windows: int
    tower_batch_segments: int
    runtime: str = "torch"
    """What runs MERT and the tower: ``torch``, ``onnxruntime``, or ``mert=..., tower=...``."""
    resampler: Resampler = "sinc"
    """The reference resamples with torchaudio's sinc filter, which ``sinc`` reproduces."""

    @property
    def sample_rate(self) -> int:
        return self.mert.sample_rate

    @property
    def dim(self) -> int:
        return self.tower.dim

    def features(self, waveforms: Sequence[np.ndarray]) -> list[np.ndarray]:
        """MERT window vectors ``[n_windows, hidden]`` per track (what the feature cache holds).

        Args:
            waveforms: mono float32 tracks at :attr:`sample_rate`, not normalised.
        """
        windows: list[np.ndarray] = []
        counts: list[int] = []
        for wave in waveforms:
            ws = prepare_windows(wave, self.sample_rate)
            windows.extend(ws)
            counts.append(len(ws))
        vectors = self.mert.window_vectors(windows, self.mert_batch_windows)
        release_memory()
        out, start = [], 0
        for count in counts:
            out.append(vectors[start : start + count])
            start += count
        return out

    def embed_features(self, features: Sequence[np.ndarray]) -> np.ndarray:
        """L2-normalised vectors ``[n, dim]`` from MERT window vectors."""
        if not features:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalize(self.tower.encode(features, self.tower_batch_segments))

    def embed(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """L2-normalised vectors ``[n, dim]`` for mono waveforms at :attr:`sample_rate`."""
        return self.embed_features(self.features(waveforms))
