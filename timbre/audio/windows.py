"""Whole-track normalisation and the 5 s window plan of the reference MERT pipeline.

Reference behaviour (``clamp3:preprocessing/audio/extract_mert.py``; see docs/model-spec.md):

1. the resampled track is normalised once, over its whole length, to zero mean and unit
   (population) variance with ``1e-7`` inside the square root (``Wav2Vec2FeatureExtractor``);
2. it is cut into non-overlapping 5 s windows;
3. a last window shorter than 1 s is dropped.

Timbre's one deliberate departure, recorded in ``PIPELINE_VERSION``: the reference produces no
window at all for a track shorter than 1 s, and most drum one-shots are that short. Such a
track is embedded whole, as a single window at its own length -- not padded to 1 s, because
zero padding would fill most frames of a 200 ms hi-hat with silence and pull every short hit
towards the same "silence" vector. Tracks shorter than :data:`MIN_CLIP_S` (clicks) are padded
with digital silence *before* normalisation to that length, so every window spans at least
seven MERT frames (75 Hz).
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
"""Identifies how vectors are computed. Travels with every vector, snapshot and cache entry.

``clamp3-ref9016d2b``: the reference audio and text paths of ``sanderwood/clamp3`` @ 9016d2b.
``short-whole-v1``: tracks under 1 s are one window at their own length, clips under 0.1 s are
padded with silence to 0.1 s. Change it whenever any rule here changes the vectors.
"""


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
    """Window boundaries for a track of ``n_samples`` at ``sample_rate``.

    Raises:
        ValueError: the track is empty.
    """
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
    """Pad (short-clip policy), normalise over the whole track, and cut into windows.

    Returns:
        The windows as views into one normalised float32 array; all but possibly the last
        have exactly ``WINDOW_S * sample_rate`` samples.
    """
    plan = plan_windows(samples.shape[0], sample_rate)
    x = np.asarray(samples, dtype=np.float32)
    if plan.padded_length > x.shape[0]:
        x = np.concatenate([x, np.zeros(plan.padded_length - x.shape[0], np.float32)])
    normed = normalize(x)
    return [normed[a:b] for a, b in plan.bounds]
