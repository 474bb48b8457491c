"""Exact top-k over a snapshot's vectors: a flat scan, or an SQ8 first pass with an exact re-rank.

Both return what an exhaustive float32 scan returns: the ``k`` best inner products, ordered by
score and then by row. The quantised scan reads the 8-bit codes (a quarter of the bytes) for
the ``k0`` best approximate scores, re-scores those candidates exactly (best first), and, as
every approximate score is within ``bound(q)`` of the true one (:mod:`~.quantiser`), the top k
is proven once the best candidate not re-scored is below ``s_k - bound`` (``s_k`` the k-th
exact score); otherwise a second pass re-scores every row above that (rare: tight clusters).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

import numpy as np

from timbre.store.snapshot.arrays import RowReader
from timbre.store.snapshot.quantiser import Prepared, Sq8

T = TypeVar("T")

MIN_CANDIDATES = 512
"""Smallest candidate set re-ranked exactly (rows): cheap to re-score, and enough that one pass
almost always proves the result, even on clustered data."""

FIRST_RERANK_ROWS = 128
"""Candidates re-ranked first (or twice the hits asked for, if more); the rest only when these
cannot prove the result (they usually can: bench/results/)."""

CANDIDATES_PER_HIT = 4
"""Candidates per requested hit (top_k + offset) when that asks for more than the minimum."""

GATHER_MAX_FRACTION = 0.25
"""A filtered flat scan copies the selected rows out when they are at most this fraction of the
snapshot; above it, scoring every row and keeping the selected ones reads fewer bytes."""

READ_MAX_ROWS = 8192
"""Re-ranks of at most this many rows read them with ``pread`` (:class:`~.arrays.RowReader`)
on a mapped snapshot; larger gathers (a filtered selection re-scored exactly, a second pass)
read through the mapping, where one long run beats many calls."""

QUANTISED_GATHER_MAX_FRACTION = 0.1
"""A filtered SQ8 pass costs about as much as an unfiltered one, so a selection of at most this
fraction of the rows is re-scored exactly instead (4 bytes per dimension of a tenth of the rows
cost about what 1 byte per dimension of all of them does)."""


@dataclass(frozen=True)
class ScanOptions:
    """How a loaded snapshot scans (the ``snapshot`` settings): the SQ8 first pass from
    ``quantised_min_vectors`` on, on ``threads`` (0 = every core this process may use)."""

    quantised_min_vectors: int
    threads: int

    def thread_count(self) -> int:
        return self.threads or len(os.sched_getaffinity(0))


class Selection:
    """The rows a filter lets through, as a boolean mask over the snapshot's rows."""

    def __init__(self, mask: np.ndarray) -> None:
        self.mask = mask
        self.count = int(np.count_nonzero(mask))

    @cached_property
    def rows(self) -> np.ndarray:
        return np.flatnonzero(self.mask)

    @cached_property
    def bits(self) -> np.ndarray:
        """Little-endian bitmap (FAISS's ``IDSelectorBitmap`` layout)."""
        return np.packbits(self.mask, bitorder="little")


def top_k(scores: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best (score, row) pairs, by score then row: deterministic under ties."""
    if k < len(scores):
        keep = np.argpartition(-scores, k - 1)[:k]
        scores, rows = scores[keep], rows[keep]
    order = np.lexsort((rows, -scores))
    return scores[order], rows[order]


class FlatScan:
    """Every selected vector scored exactly (the reference; fastest on small snapshots)."""

    kind = "flat"

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    def top(
        self, query: np.ndarray, k: int, selection: Selection | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top ``k`` (scores, rows) over the rows of ``selection`` (all if None)."""
        n = len(self.vectors)
        if selection is None:
            return top_k(self.vectors @ query, np.arange(n), k)
        rows = selection.rows
        if len(rows) <= GATHER_MAX_FRACTION * n:
            return top_k(self.exact(rows, query), rows, k)
        return top_k((self.vectors @ query)[rows], rows, k)

    def exact(self, rows: np.ndarray, query: np.ndarray) -> np.ndarray:
        """Exact scores of ``rows`` (sorted rows read the mapped file in order)."""
        return self.rows_of(rows) @ query if len(rows) else np.empty(0, np.float32)

    def rows_of(self, rows: np.ndarray) -> np.ndarray:
        """The float32 vectors of ``rows`` (ascending), a copy."""
        vectors: np.ndarray = self.vectors[rows]
        return vectors


class QuantisedScan(FlatScan):
    """SQ8 first pass over the codes, exact float32 re-rank, proof of exactness (module doc)."""

    kind = "sq8"

    def __init__(
        self,
        vectors: np.ndarray,
        codes: np.ndarray,
        quantiser: Sq8,
        *,
        threads: int,
        rows: RowReader | None = None,
    ) -> None:
        super().__init__(vectors)
        self.codes = codes
        self.quantiser = quantiser
        self._rows = rows  # reads re-ranked rows of a mapped snapshot without mapping them
        self.second_passes = 0  # how often the first pass could not prove the result
        self.early_proofs = 0  # how often the best FIRST_RERANK_ROWS candidates proved it
        n = len(vectors)
        # Range boundaries on multiples of 8 rows, so each range's bitmap is a byte slice.
        step = -(-n // max(1, threads) // 8) * 8 or 8
        self._ranges = [(lo, min(lo + step, n)) for lo in range(0, n, step)]
        self._pool = _pool(len(self._ranges)) if len(self._ranges) > 1 else None

    def top(
        self, query: np.ndarray, k: int, selection: Selection | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        available = len(self.vectors) if selection is None else selection.count
        k = min(k, available)
        candidates = min(available, max(MIN_CANDIDATES, CANDIDATES_PER_HIT * k))
        small = selection is not None and available <= QUANTISED_GATHER_MAX_FRACTION * len(
            self.codes
        )
        if k == 0 or candidates == available or small:
            return super().top(query, k, selection)  # exact, and cheaper than a first pass
        bits = None if selection is None else selection.bits
        prepared = self.quantiser.prepare(query)
        approx, rows = self._first_pass(prepared, candidates, bits)
        order = np.argsort(-approx, kind="stable")
        approx, rows = approx[order], rows[order]  # best approximate score first
        # Re-rank the best few first: when even the next candidate's approximate score cannot
        # reach the k-th exact one, the rest of the candidates (and every row outside them,
        # scored lower still) are out, and their rows are never read.
        head = min(len(rows), max(FIRST_RERANK_ROWS, 2 * k))
        checked = np.sort(rows[:head])
        exact = self.exact(checked, query)
        threshold = _kth(exact, k) - prepared.bound
        if head < len(rows) and approx[head] >= threshold:
            rest = np.sort(rows[head:])
            checked = np.concatenate([checked, rest])
            exact = np.concatenate([exact, self.exact(rest, query)])
            threshold = _kth(exact, k) - prepared.bound
            head = len(rows)
        if head == len(rows) and approx[-1] >= threshold:
            # Unproven: some row left out might still beat the k-th score. Collect them all.
            self.second_passes += 1
            above = self._above(prepared, np.nextafter(threshold, -1.0), bits)
            more = np.setdiff1d(above, checked)
            checked = np.concatenate([checked, more])
            exact = np.concatenate([exact, self.exact(more, query)])
        if head < len(rows):
            self.early_proofs += 1
        return top_k(exact, checked, k)

    def rows_of(self, rows: np.ndarray) -> np.ndarray:
        if self._rows is not None and len(rows) <= READ_MAX_ROWS:
            return self._rows.read(rows)  # the same float32 values, never mapped in
        return super().rows_of(rows)

    def _first_pass(
        self, query: Prepared, k: int, bits: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        parts = self._each_range(lambda lo, hi: self._top_in(query, k, bits, lo, hi))
        approx = np.concatenate([a for a, _ in parts])
        rows = np.concatenate([r for _, r in parts])
        if len(approx) > k:
            # The k best of the union are the k best overall; a row left out scores at most
            # the k-th, which is what the exactness test compares.
            keep = np.argpartition(-approx, k - 1)[:k]
            approx, rows = approx[keep], rows[keep]
        return approx, rows

    def _top_in(
        self, query: Prepared, k: int, bits: np.ndarray | None, lo: int, hi: int
    ) -> tuple[np.ndarray, np.ndarray]:
        approx, rows = self.quantiser.top(
            self.codes[lo:hi], query, k, None if bits is None else bits[lo // 8 :]
        )
        return approx, rows + lo

    def _above(self, query: Prepared, radius: float, bits: np.ndarray | None) -> np.ndarray:
        def one(lo: int, hi: int) -> np.ndarray:
            part = None if bits is None else bits[lo // 8 :]
            return self.quantiser.above(self.codes[lo:hi], query, radius, part) + lo

        return np.concatenate(self._each_range(one))

    def _each_range(self, fn: Callable[[int, int], T]) -> list[T]:
        """``fn(lo, hi)`` for every row range, on the pool's threads when there are several."""
        if self._pool is None:
            return [fn(lo, hi) for lo, hi in self._ranges]
        futures = [self._pool.submit(fn, lo, hi) for lo, hi in self._ranges]
        return [f.result() for f in futures]


def _kth(scores: np.ndarray, k: int) -> float:
    """The k-th largest of ``scores`` (which holds at least k)."""
    return float(np.partition(scores, len(scores) - k)[len(scores) - k])


_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _pool(threads: int) -> ThreadPoolExecutor:
    """One pool per thread count for the whole process: snapshots come and go, threads stay."""
    with _POOLS_LOCK:
        if threads not in _POOLS:
            _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="snapshot-scan")
        return _POOLS[threads]
