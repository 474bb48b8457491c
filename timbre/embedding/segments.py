"""The exact batching rules both runtimes share (numpy only: no torch, no onnxruntime).

* Segments (docs/model-spec.md, clamp3): an input longer than a segment is cut into segments
  of ``seg`` rows, the last segment being the *last* ``seg`` rows (overlapping its
  neighbour); each is encoded, and the segment vectors are averaged with weights
  ``[seg] * (n // seg) + [n % seg]``. Segments of many inputs share one padded, masked batch,
  run at the longest member's length rather than ``seg``: attention is masked and the pool
  ignores padding, so the result is the same.
* MERT windows: only windows of identical length share a forward pass. The feature encoder
  has no attention mask and GroupNorm normalises over time, so a padded short window would
  change (docs/model-spec.md, clamp3 audio step 4).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Segment:
    """Rows ``[start, stop)`` of one input, and its weight in the input's mean."""

    start: int
    stop: int
    weight: int


def plan_segments(n: int, seg: int) -> list[Segment]:
    """The reference segmentation of ``n`` rows into segments of at most ``seg`` rows.

    >>> [(s.start, s.stop, s.weight) for s in plan_segments(129, 128)]
    [(0, 128, 128), (1, 129, 1)]
    """
    if n <= 0 or seg <= 0:
        raise ValueError(f"cannot segment {n} rows into segments of {seg}")
    bounds = [(start, min(start + seg, n)) for start in range(0, n, seg)]
    bounds[-1] = (max(0, n - seg), n)
    weights = [seg] * (n // seg) + ([n % seg] if n % seg else [])
    return [Segment(a, b, w) for (a, b), w in zip(bounds, weights, strict=True)]


def encode_segmented(
    items: Sequence[np.ndarray],
    seg: int,
    run: Callable[[list[np.ndarray]], np.ndarray],
    max_batch: int,
) -> np.ndarray:
    """Segment every item, run segments in length-sorted batches, combine per item.

    Args:
        items: one array per input whose first axis is the rows (token ids or vectors).
        seg: most rows per segment.
        run: encodes a list of segments (each ``[rows, ...]``) into ``[len, dim]`` vectors.
        max_batch: most segments per ``run`` call.

    Returns:
        ``[len(items), dim]`` float32: the weighted segment means, summed in float64.
    """
    pieces: list[tuple[int, int, np.ndarray]] = []  # (item, weight, rows)
    for index, rows in enumerate(items):
        for s in plan_segments(int(rows.shape[0]), seg):
            pieces.append((index, s.weight, rows[s.start : s.stop]))
    order = sorted(range(len(pieces)), key=lambda i: int(pieces[i][2].shape[0]))
    encoded: list[np.ndarray | None] = [None] * len(pieces)
    for start in range(0, len(order), max_batch):
        chunk = order[start : start + max_batch]
        vectors = np.asarray(run([pieces[i][2] for i in chunk]))
        for j, i in enumerate(chunk):
            encoded[i] = vectors[j]
    dim = int(encoded[0].shape[-1]) if encoded and encoded[0] is not None else 0
    sums = np.zeros((len(items), dim), dtype=np.float64)
    totals = np.zeros(len(items), dtype=np.float64)
    for (index, weight, _), vector in zip(pieces, encoded, strict=True):
        assert vector is not None
        sums[index] += weight * vector.astype(np.float64)
        totals[index] += weight
    return (sums / totals[:, None]).astype(np.float32)


def pad_rows(
    segments: Sequence[np.ndarray], fill: float | int, dtype: type | np.dtype
) -> tuple[np.ndarray, np.ndarray]:
    """Stack segments into one ``[n, longest, ...]`` batch and its ``[n, longest]`` int64 mask."""
    longest = max(int(s.shape[0]) for s in segments)
    batch = np.full((len(segments), longest, *segments[0].shape[1:]), fill, dtype=dtype)
    mask = np.zeros((len(segments), longest), dtype=np.int64)
    for i, s in enumerate(segments):
        batch[i, : s.shape[0]] = s
        mask[i, : s.shape[0]] = 1
    return batch, mask


def batches_by_length(windows: Sequence[np.ndarray], max_batch: int) -> Iterator[list[int]]:
    """Indices of ``windows`` in groups of equal length, at most ``max_batch`` per group."""
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, window in enumerate(windows):
        by_length[int(window.shape[0])].append(i)
    for indices in by_length.values():
        for start in range(0, len(indices), max_batch):
            yield indices[start : start + max_batch]
