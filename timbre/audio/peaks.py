"""Waveform peaks for display, computed at ingest and stored in the payload (``peaks``).

Format 1: ``PEAK_BUCKETS`` bytes, each the largest absolute sample of one equal slice of the
clip, 255 = full scale, not normalised per clip (a quiet sample looks quiet); base64 in JSON.
"""

from __future__ import annotations

import base64
import binascii

import numpy as np

PEAK_BUCKETS = 200
"""Buckets per clip: enough for a row ~200-400 px wide, small enough for every hit to carry."""

PEAKS_FORMAT = 1
"""Version of the format above; bump it if the bucketing or the scale ever changes."""


def compute_peaks(samples: np.ndarray, buckets: int = PEAK_BUCKETS) -> np.ndarray:
    """uint8 ``[buckets]``: the largest absolute value in each equal slice of a mono clip
    (a clip shorter than ``buckets`` repeats its samples); ValueError on bad input."""
    x = np.abs(np.asarray(samples, dtype=np.float32).ravel())
    if x.size == 0 or buckets < 1:
        raise ValueError(f"need samples and buckets >= 1 (got {x.size} samples, {buckets})")
    if not np.isfinite(x).all():
        raise ValueError("samples hold NaN or infinite values")
    n = x.size
    if n >= buckets:
        edges = (np.arange(buckets) * n) // buckets  # start of each slice, every slice non-empty
        peaks = np.maximum.reduceat(x, edges)
    else:
        peaks = x[(np.arange(buckets) * n) // buckets]
    return np.round(np.clip(peaks, 0.0, 1.0) * 255.0).astype(np.uint8)


def encode_peaks(peaks: np.ndarray) -> str:
    """The peaks as one base64 string (what the payload's ``peaks`` field holds)."""
    return base64.b64encode(np.asarray(peaks, dtype=np.uint8).tobytes()).decode("ascii")


def decode_peaks(text: str) -> np.ndarray:
    """The uint8 peaks of a payload's ``peaks`` string (ValueError: not base64)."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"peaks are not base64: {exc}") from exc
    return np.frombuffer(raw, dtype=np.uint8).copy()
