"""Steering by examples: Qdrant's ``average_vector`` recommend rule, one formula for every engine.

The query vector of positive examples P and negative examples N is

    q = mean(P)                         without negatives
    q = mean(P) + (mean(P) - mean(N))   with them

searched by cosine (q normalised). It is linear, so it is one nearest-neighbour search: a
server runs it as its own recommend query, the embedded shard (whose API offers only the
``best_score`` and ``sum_scores`` strategies, each a scan scoring every example) and the
snapshot search with this very vector, and all of them rank alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from timbre.errors import InvalidRequestError

_ZERO = 1e-6
"""Below this norm the examples cancel out: no direction is left to search."""


@dataclass(frozen=True, eq=False)
class Examples:
    """Positive and negative example vectors (rows, float32, L2-normalised), at least one
    positive."""

    positive: np.ndarray
    negative: np.ndarray

    @classmethod
    def of(cls, positive: Sequence[np.ndarray], negative: Sequence[np.ndarray] = ()) -> Examples:
        if not positive:
            raise InvalidRequestError("steering needs at least one positive example")
        pos = np.stack([np.asarray(v, dtype=np.float32) for v in positive])
        dim = pos.shape[1]
        neg = (
            np.stack([np.asarray(v, dtype=np.float32) for v in negative])
            if negative
            else np.empty((0, dim), dtype=np.float32)
        )
        return cls(pos, neg)

    def raw(self) -> np.ndarray:
        """The unnormalised average vector (float64), as Qdrant forms it."""
        mean_pos: np.ndarray = self.positive.astype(np.float64).mean(axis=0)
        if not len(self.negative):
            return mean_pos
        mean_neg: np.ndarray = self.negative.astype(np.float64).mean(axis=0)
        steered: np.ndarray = mean_pos + (mean_pos - mean_neg)
        return steered

    def vector(self) -> np.ndarray:
        """The query vector, L2-normalised float32; InvalidRequestError if the examples cancel
        out."""
        raw = self.raw()
        norm = float(np.linalg.norm(raw))
        if norm < _ZERO:
            raise InvalidRequestError("the positive and negative examples cancel out")
        return (raw / norm).astype(np.float32)
