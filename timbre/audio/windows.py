"""Whole-track normalisation and the 5 s window plan of the reference MERT pipeline.

As docs/model-spec.md, with one departure (``PIPELINE_VERSION``): a track under 1 s, for which
the reference makes no window, is one window at its own length (padding to 1 s would pull
every short hit towards one "silence" vector).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WINDOW_S = 5.0
"""Window length (s): the MERT pre-training context, used by the reference extractor."""

MIN_TAIL_S = 1.0
"""A last window shorter than this (s) is dropped, as in the reference."""

MIN_CLIP_S = 0.1
"""Clips shorter than this (s) are padded with silence to it (Timbre's short-clip policy)."""

NORM_EPS = 1e-7
"""Added to the variance inside the square root (``Wav2Vec2FeatureExtractor``)."""

PIPELINE_VERSION = "clamp3-ref9016d2b/short-whole-v1"
"""How vectors are computed (``sanderwood/clamp3`` @ 9016d2b, plus the short-clip policy);
travels with every vector, snapshot and cache entry. Change it with any rule here."""


def normalize(samples: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-variance normalisation over the whole track (float32, as the reference)."""
    x = np.asarray(samples, dtype=np.float32)
    normalized: np.ndarray = (x - x.mean()) / np.sqrt(x.var() + NORM_EPS)
    return normalized.astype(np.float32, copy=False)


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """Where the windows of one track start and end, in samples of the normalised track."""

    bounds: tuple[tuple[int, int], ...]
    padded_length: int

    @property
    def count(self) -> int:
        return len(self.bounds)


def plan_windows(n_samples: int, sample_rate: int) -> WindowPlan:
    """Window boundaries for a track of ``n_samples`` (> 0) at ``sample_rate``."""
    if n_samples <= 0:
        raise ValueError("cannot window an empty track")
    win = round(WINDOW_S * sample_rate)
    min_tail = round(MIN_TAIL_S * sample_rate)
    min_clip = round(MIN_CLIP_S * sample_rate)
    if n_samples < min_tail:
        length = max(n_samples, min_clip)
        return WindowPlan(bounds=((0, length),), padded_length=length)
    bounds = [(start, min(start + win, n_samples)) for start in range(0, n_samples, win)]
    if bounds[-1][1] - bounds[-1][0] < min_tail:
        bounds.pop()
    return WindowPlan(bounds=tuple(bounds), padded_length=n_samples)


def prepare_windows(samples: np.ndarray, sample_rate: int) -> list[np.ndarray]:
    """Pad (short-clip policy), normalise over the whole track, and cut into windows (views
    into one normalised float32 array)."""
    plan = plan_windows(samples.shape[0], sample_rate)
    x = np.asarray(samples, dtype=np.float32)
    if plan.padded_length > x.shape[0]:
        x = np.concatenate([x, np.zeros(plan.padded_length - x.shape[0], np.float32)])
    normed = normalize(x)
    return [normed[a:b] for a, b in plan.bounds]
