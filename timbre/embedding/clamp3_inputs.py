"""The clamp3 family's input rules that both runtimes share (numpy and ``tokenizers`` only).

* Segments (docs/model-spec.md, clamp3): segments of many inputs share one padded, masked
  batch at the longest member's length: attention is masked and the pool ignores padding,
  so the result is the same.
* MERT windows: only windows of identical length share a forward pass (the feature encoder
  has no mask and GroupNorm normalises over time, so padding would change a short window).
* Text: XLM-R token ids as the reference prepares them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from timbre.errors import ModelFilesError

TEXT_SEGMENT_TOKENS = 128
"""Tokens per text segment (CLaMP3 ``MAX_TEXT_LENGTH``; not recorded in any model file)."""


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
    """Segment every item (rows on its first axis), run the segments in length-sorted batches
    of at most ``max_batch`` through ``run``, and return each item's weighted segment mean
    ``[len(items), dim]`` (summed in float64)."""
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


def with_zero_ends(features: Sequence[np.ndarray], input_dim: int) -> list[np.ndarray]:
    """Each track's MERT window vectors between two zero vectors, as CLaMP3 was trained."""
    zero = np.zeros((1, input_dim), np.float32)
    return [np.concatenate([zero, np.asarray(f, np.float32), zero]) for f in features]


def batches_by_length(windows: Sequence[np.ndarray], max_batch: int) -> Iterator[list[int]]:
    """Indices of ``windows`` in groups of equal length, at most ``max_batch`` per group."""
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, window in enumerate(windows):
        by_length[int(window.shape[0])].append(i)
    for indices in by_length.values():
        for start in range(0, len(indices), max_batch):
            yield indices[start : start + max_batch]


class TextTokens:
    """The XLM-R tokenizer with the reference's line handling: ``separator`` joins lines
    (``</s>``); ``pad_id`` fills padded positions (masked out; the reference uses 1)."""

    def __init__(self, tokenizer: Tokenizer, *, separator: str, pad_id: int) -> None:
        self.tokenizer = tokenizer
        self.separator = separator
        self.pad_id = pad_id

    @classmethod
    def load(cls, xlmr_dir: Path, pad_id: int) -> TextTokens:
        """Read ``tokenizer.json`` and the separator from ``tokenizer_config.json``
        (ModelFilesError when a file is unreadable or not a tokenizers file)."""
        path = xlmr_dir / "tokenizer.json"
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # the tokenizers library raises bare Exceptions
            raise ModelFilesError(f"{path} is not a tokenizers file: {exc}") from exc
        tokenizer.no_truncation()
        tokenizer.no_padding()
        config = xlmr_dir / "tokenizer_config.json"
        data = {}
        if config.is_file():
            try:
                data = json.loads(config.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ModelFilesError(f"cannot read {config}: {exc}") from exc
        token = data.get("sep_token", "</s>")
        if isinstance(token, dict):
            token = token.get("content", "</s>")
        return cls(tokenizer, separator=str(token), pad_id=pad_id)

    def token_ids(self, text: str) -> list[int]:
        """Lines de-duplicated (first occurrence kept: the reference's ``set`` order changes
        from process to process) and empty ones dropped, joined with the separator, then
        tokenised with ``<s> ... </s>`` and no truncation."""
        lines = [line for line in dict.fromkeys(text.split("\n")) if line]
        return list(self.tokenizer.encode(self.separator.join(lines)).ids)

    def encode_ids(self, texts: Sequence[str]) -> list[np.ndarray]:
        return [np.asarray(self.token_ids(t), dtype=np.int64) for t in texts]
