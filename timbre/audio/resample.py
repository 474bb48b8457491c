"""Band-limited sinc resampling, numerically equivalent to torchaudio's default ``Resample``.

The reference's polyphase filter bank in numpy, so embeddings of resampled files match it; rate
pairs with a huge reduced ratio (44101 Hz) fall back to libsoxr.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal

import numpy as np
import soxr

Resampler = Literal["sinc", "soxr_vhq"]
"""How audio reaches a model's rate: ``sinc`` (the clamp3 reference's filter) or ``soxr_vhq``
(libsoxr, whose stopband lies below the log-mel floor the clap front end reads)."""

LOWPASS_FILTER_WIDTH = 6
"""Zero crossings of the sinc kept on each side (torchaudio default)."""

ROLLOFF = 0.99
"""Cut-off as a fraction of the lower Nyquist frequency (torchaudio default)."""

MAX_POLYPHASE_TAPS = 4_000_000
"""Largest filter bank built (phases x taps, ~16 MB of float32); beyond it libsoxr is used."""

_CHUNK_FRAMES = 32_768
"""Output frames per block, bounding the strided copy to a few MB on long files."""


def _reduced(orig_hz: int, new_hz: int) -> tuple[int, int]:
    g = math.gcd(orig_hz, new_hz)
    return orig_hz // g, new_hz // g


@lru_cache(maxsize=16)
def _kernel(orig_hz: int, new_hz: int) -> tuple[np.ndarray, int]:
    """Polyphase filter bank ``[taps, phases]`` (float32) and the padding ``width``."""
    orig, new = _reduced(orig_hz, new_hz)
    base = min(orig, new) * ROLLOFF
    width = math.ceil(LOWPASS_FILTER_WIDTH * orig / base)
    idx = np.arange(-width, width + orig, dtype=np.float64) / orig
    # torchaudio divides an integer range in float32 before adding the float64 grid; doing the
    # same keeps the taps bit-identical to the reference.
    phase = np.arange(0, -new, -1).astype(np.float32) / np.float32(new)
    t = (phase.astype(np.float64)[:, None] + idx[None, :]) * base
    t = np.clip(t, -LOWPASS_FILTER_WIDTH, LOWPASS_FILTER_WIDTH)
    window = np.cos(t * math.pi / LOWPASS_FILTER_WIDTH / 2) ** 2
    t = t * math.pi
    with np.errstate(invalid="ignore", divide="ignore"):
        sinc = np.where(t == 0, 1.0, np.sin(t) / t)
    kernels = sinc * window * (base / orig)
    return np.ascontiguousarray(kernels.astype(np.float32).T), width


def resample(
    samples: np.ndarray, orig_hz: int, new_hz: int, method: Resampler = "sinc"
) -> np.ndarray:
    """Resample a mono float32 signal to ``ceil(len * new / orig)`` samples (as torchaudio)."""
    if orig_hz <= 0 or new_hz <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_hz} -> {new_hz}")
    x = np.ascontiguousarray(samples, dtype=np.float32)
    if orig_hz == new_hz:
        return x
    orig, new = _reduced(orig_hz, new_hz)
    out_len = math.ceil(new * x.shape[0] / orig)
    taps = 2 * math.ceil(LOWPASS_FILTER_WIDTH * orig / (min(orig, new) * ROLLOFF)) + orig
    if method == "soxr_vhq" or taps * new > MAX_POLYPHASE_TAPS:
        out = soxr.resample(x, orig_hz, new_hz, quality="VHQ").astype(np.float32, copy=False)
        return _fit(out, out_len)

    kernel, width = _kernel(orig_hz, new_hz)
    n_taps = kernel.shape[0]
    padded = np.concatenate([np.zeros(width, np.float32), x, np.zeros(width + orig, np.float32)])
    n_frames = (padded.shape[0] - n_taps) // orig + 1
    frames = np.lib.stride_tricks.as_strided(
        padded,
        shape=(n_frames, n_taps),
        strides=(padded.strides[0] * orig, padded.strides[0]),
        writeable=False,
    )
    out = np.empty((n_frames, new), dtype=np.float32)
    for start in range(0, n_frames, _CHUNK_FRAMES):
        stop = min(start + _CHUNK_FRAMES, n_frames)
        np.matmul(frames[start:stop], kernel, out=out[start:stop])
    return out.reshape(-1)[:out_len]


def _fit(x: np.ndarray, length: int) -> np.ndarray:
    if x.shape[0] >= length:
        return x[:length]
    return np.concatenate([x, np.zeros(length - x.shape[0], np.float32)])
