"""The SQ8 first pass: FAISS's 8-bit scalar quantiser, its codes, and a proven error bound.

Each dimension ``i`` is quantised to 256 levels over its range ``[vmin_i, vmin_i + vdiff_i]``,
taken over *every* stored vector (so nothing is clipped), and decoded at the centre of its
level. The export measures ``max_error_i = max |x_i - decode(code)_i|`` over all vectors, so for
any query ``q`` and stored vector ``x``::

    |q . x - q . decode(code(x))|  <=  sum_i |q_i| * max_error_i  (+ float rounding)

which :meth:`Sq8.bound` returns. The scan uses it to prove that no vector left out of the exact
re-rank could have entered the top k (see :mod:`timbre.store.snapshot.scan`).

Scanning calls FAISS's own SIMD kernels (``ScalarQuantizer.select_InvertedListScanner``) over
a contiguous range of the codes, so that ranges run on several cores at once (FAISS scans one
query on one core; its calls release the GIL).
"""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np

ROUNDING_MARGIN = 1e-4
"""Added to the bound for float32 rounding: the SIMD decode and the two 768-term dot products
(approximate and exact) are each within ~d * 2^-24 ~ 5e-5 of the real value for unit vectors."""

ENCODE_CHUNK_ROWS = 65_536
"""Rows encoded at a time on export (~200 MB of float32 at 768 dims, then 50 MB of codes)."""

_FLOOR = -float(np.finfo(np.float32).max)


class Sq8:
    """The trained quantiser of one snapshot and its measured reconstruction error.

    Args:
        params: float32 ``[3, dim]``: ``vmin``, ``vdiff`` and ``max_error`` per dimension (the
            snapshot's ``sq8_params.npy``).
    """

    def __init__(self, params: np.ndarray) -> None:
        self.params = np.ascontiguousarray(params, dtype=np.float32)
        self.dim = int(self.params.shape[1])
        self.max_error = self.params[2]
        # Any: faiss's generated stubs lack the scanner API used below.
        self._sq: Any = faiss.ScalarQuantizer(self.dim, faiss.ScalarQuantizer.QT_8bit)
        faiss.copy_array_to_vector(self.params[:2].ravel(), self._sq.trained)

    @classmethod
    def from_range(cls, vmin: np.ndarray, vmax: np.ndarray) -> Sq8:
        """An untested quantiser over ``[vmin, vmax]`` per dimension (error not measured yet)."""
        low = np.where(np.isfinite(vmin), vmin, 0.0).astype(np.float32)
        # A constant dimension (or a single vector) has no range; any positive width encodes it
        # to level 0, decoded within width/510 of the value.
        width = np.maximum(np.where(np.isfinite(vmax), vmax, 0.0) - low, 1e-6).astype(np.float32)
        return cls(np.stack([low, width, np.zeros_like(low)]))

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        """uint8 ``[n, dim]`` codes of float32 ``[n, dim]`` vectors."""
        codes: np.ndarray = self._sq.compute_codes(np.ascontiguousarray(vectors, np.float32))
        return codes.reshape(len(vectors), self.dim)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        decoded: np.ndarray = self._sq.decode(np.ascontiguousarray(codes))
        return decoded.reshape(len(codes), self.dim)

    def bound(self, query: np.ndarray) -> float:
        """Largest possible difference between a true and an approximate score for ``query``."""
        return float(np.abs(query.astype(np.float64)) @ self.max_error) + ROUNDING_MARGIN

    def top(
        self, codes: np.ndarray, query: np.ndarray, k: int, bits: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Approximate top ``k`` of ``codes`` (rows as offsets into ``codes``), unordered.

        Args:
            codes: uint8 ``[m, dim]``, C-contiguous (a slice of the snapshot's codes).
            query: float32 ``[dim]``.
            k: heap size.
            bits: the rows to consider as a little-endian bitmap over ``codes``, or None.
        """
        scanner, _keep = self._scanner(query, bits)
        scores = np.full(k, _FLOOR, dtype=np.float32)
        rows = np.full(k, -1, dtype=np.int64)
        scanner.scan_codes(
            len(codes), faiss.swig_ptr(codes), None, faiss.swig_ptr(scores), faiss.swig_ptr(rows), k
        )
        found = rows >= 0
        return scores[found], rows[found]

    def above(
        self, codes: np.ndarray, query: np.ndarray, radius: float, bits: np.ndarray | None
    ) -> np.ndarray:
        """Rows (offsets into ``codes``) whose approximate score is above ``radius``."""
        scanner, _keep = self._scanner(query, bits)
        result = faiss.RangeSearchResult(1)
        partial = faiss.RangeSearchPartialResult(result)  # type: ignore[attr-defined]
        scanner.scan_codes_range(
            len(codes), faiss.swig_ptr(codes), None, float(radius), partial.new_result(0)
        )
        partial.finalize()
        found = int(faiss.rev_swig_ptr(result.lims, 2)[1])
        if found == 0:
            return np.empty(0, dtype=np.int64)
        return np.array(faiss.rev_swig_ptr(result.labels, found), dtype=np.int64)

    def _scanner(self, query: np.ndarray, bits: np.ndarray | None) -> tuple[Any, tuple[Any, ...]]:
        """A FAISS scanner for ``query``; the second value keeps what it points to alive."""
        query = np.ascontiguousarray(query, dtype=np.float32)
        # IDSelectorBitmap takes the bitmap's size in bytes.
        selector = None if bits is None else faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits))
        # store_pairs=True: a hit's label is its offset in the scanned codes (list 0).
        scanner = self._sq.select_InvertedListScanner(
            faiss.METRIC_INNER_PRODUCT, None, True, selector, False
        )
        scanner.list_no = 0
        scanner.set_query(faiss.swig_ptr(query))
        return scanner, (query, selector, bits)
