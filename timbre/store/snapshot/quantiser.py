"""The SQ8 first pass: FAISS's 8-bit scalar quantiser, its codes, and a proven error bound.

Each dimension ``i`` is quantised to 256 levels over its range ``[vmin_i, vmin_i + vdiff_i]``,
taken over *every* stored vector (so nothing is clipped), and decoded at the centre of its
level. The export measures ``max_error_i = max |x_i - decode(code)_i|`` over all vectors, so for
any query ``q`` and stored vector ``x``::

    |q . x - q . decode(code(x))|  <=  sum_i |q_i| * max_error_i  (+ float rounding)

The decoded score is affine in the codes: ``q . decode(c) = K + sum_i w_i c_i`` with
``w_i = q_i vdiff_i / 255``. The scan rounds ``w`` to integers, ``w = s * w8 + e`` with
``w8`` in [-127, 127], and lets FAISS's integer kernel (``QT_8bit_direct_signed``: the same
bytes read as ``c - 128``) compute ``I = sum_i w8_i (c_i - 128)`` exactly, about twice as fast
as its float decode. Then::

    q . decode(c) = K' + s * I + sum_i e_i (c_i - 127.5),   K' = K + 128 s sum(w8) + 127.5 sum(e)

and by Cauchy-Schwarz the last term is at most ``||e||_2 * R``, ``R`` the largest
``||c - 127.5||_2`` of any stored row (measured at export). :meth:`Prepared.bound` adds it to
the decode bound; the scan uses the sum to prove that no vector left out of the exact re-rank
could have entered the top k (see :mod:`timbre.store.snapshot.scan`).

Scanning calls FAISS's own SIMD kernels (``ScalarQuantizer.select_InvertedListScanner``) over
a contiguous range of the codes, so that ranges run on several cores at once (FAISS scans one
query on one core; its calls release the GIL).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

ROUNDING_MARGIN = 1e-4
"""Added to the bound for float32 rounding: the SIMD decode and the two 768-term dot products
(approximate and exact) are each within ~d * 2^-24 ~ 5e-5 of the real value for unit vectors."""

ENCODE_CHUNK_ROWS = 65_536
"""Rows encoded at a time on export (~200 MB of float32 at 768 dims, then 50 MB of codes)."""

INTEGER_LEVELS = 127
"""The rounded query weights lie in [-127, 127]: with codes read as [-128, 127], every partial
sum of a 768-d product stays below 2^24 in magnitude, exact in int32 and in float32 alike."""

_FLOOR = -float(np.finfo(np.float32).max)
_RADIUS_CHUNK_ROWS = 8192  # 24 MB of float32 at 768 dims: stays in cache between the two steps


def code_radius(codes: np.ndarray) -> float:
    """The largest ``||c - 127.5||_2`` over the rows of uint8 ``codes`` (see the module doc)."""
    if len(codes) == 0:
        return 0.0
    signed: Any = faiss.ScalarQuantizer(codes.shape[1], faiss.ScalarQuantizer.QT_8bit_direct_signed)
    largest = 0.0
    for start in range(0, len(codes), _RADIUS_CHUNK_ROWS):
        chunk = np.ascontiguousarray(codes[start : start + _RADIUS_CHUNK_ROWS])
        centred = signed.decode(chunk).reshape(len(chunk), -1) + 0.5  # c - 128 + 0.5
        largest = max(largest, float(np.einsum("ij,ij->i", centred, centred).max()))
    return float(np.sqrt(largest))


@dataclass(frozen=True)
class Prepared:
    """One query, ready for the first pass.

    Attributes:
        weights: float32 ``[dim]``: integers in [-127, 127] for the integer kernel, else the
            query itself (the float decode kernel).
        scale, offset: approximate score = ``offset + scale * kernel score``.
        bound: largest possible gap between that approximate score and the true one.
        integer: which kernel scores it.
    """

    weights: np.ndarray
    scale: float
    offset: float
    bound: float
    integer: bool


class Sq8:
    """The trained quantiser of one snapshot and its measured reconstruction error.

    Args:
        params: float32 ``[3, dim]``: ``vmin``, ``vdiff`` and ``max_error`` per dimension (the
            snapshot's ``sq8_params.npy``).
        radius: the codes' :func:`code_radius`; None scores with the float decode kernel.
    """

    def __init__(self, params: np.ndarray, radius: float | None = None) -> None:
        self.params = np.ascontiguousarray(params, dtype=np.float32)
        self.dim = int(self.params.shape[1])
        self.max_error = self.params[2]
        # Any: faiss's generated stubs lack the scanner API used below.
        self._sq: Any = faiss.ScalarQuantizer(self.dim, faiss.ScalarQuantizer.QT_8bit)
        faiss.copy_array_to_vector(self.params[:2].ravel(), self._sq.trained)
        exact_sums = self.dim * INTEGER_LEVELS * 128 < 2**24
        self.radius = radius if exact_sums else None
        self._signed: Any = faiss.ScalarQuantizer(
            self.dim, faiss.ScalarQuantizer.QT_8bit_direct_signed
        )
        vmin, vdiff = self.params[:2].astype(np.float64)
        self._step = vdiff / 255  # w_i = q_i * step_i
        self._centre = vmin + 0.5 * self._step  # K = q . centre

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
        """Largest possible difference between a true and a decoded score for ``query``."""
        return float(np.abs(query.astype(np.float64)) @ self.max_error) + ROUNDING_MARGIN

    def prepare(self, query: np.ndarray) -> Prepared:
        """``query`` folded into the codes' integer domain (module doc), when it can be."""
        query = np.ascontiguousarray(query, dtype=np.float32)
        decoded = self.bound(query)
        q = query.astype(np.float64)
        w = q * self._step
        top = float(np.abs(w).max())
        if self.radius is None or top == 0.0:
            return Prepared(query, 1.0, 0.0, decoded, integer=False)
        scale = top / INTEGER_LEVELS
        w8 = np.round(w / scale)
        error = w - scale * w8
        offset = float(q @ self._centre) + 128 * scale * float(w8.sum()) + 127.5 * error.sum()
        bound = decoded + float(np.linalg.norm(error)) * self.radius
        return Prepared(w8.astype(np.float32), scale, offset, bound, integer=True)

    def top(
        self, codes: np.ndarray, query: Prepared, k: int, bits: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Approximate top ``k`` of ``codes`` (rows as offsets into ``codes``), unordered.

        Args:
            codes: uint8 ``[m, dim]``, C-contiguous (a slice of the snapshot's codes).
            query: from :meth:`prepare`.
            k: heap size.
            bits: the rows to consider as a little-endian bitmap over ``codes``, or None.

        Returns:
            float64 approximate scores (within ``query.bound`` of the true ones) and rows.
        """
        scanner, _keep = self._scanner(query, bits)
        scores = np.full(k, _FLOOR, dtype=np.float32)
        rows = np.full(k, -1, dtype=np.int64)
        scanner.scan_codes(
            len(codes), faiss.swig_ptr(codes), None, faiss.swig_ptr(scores), faiss.swig_ptr(rows), k
        )
        found = rows >= 0
        return query.offset + query.scale * scores[found].astype(np.float64), rows[found]

    def above(
        self, codes: np.ndarray, query: Prepared, radius: float, bits: np.ndarray | None
    ) -> np.ndarray:
        """Rows (offsets into ``codes``) whose approximate score is at least ``radius``; a few
        more may come (each is re-scored exactly anyway)."""
        scanner, _keep = self._scanner(query, bits)
        kernel_radius = (radius - query.offset) / query.scale
        if query.integer:  # integer scores: anything from the next integer down passes
            kernel_radius = float(np.floor(kernel_radius)) - 1.0
        result = faiss.RangeSearchResult(1)
        partial = faiss.RangeSearchPartialResult(result)  # type: ignore[attr-defined]
        scanner.scan_codes_range(
            len(codes), faiss.swig_ptr(codes), None, float(kernel_radius), partial.new_result(0)
        )
        partial.finalize()
        found = int(faiss.rev_swig_ptr(result.lims, 2)[1])
        if found == 0:
            return np.empty(0, dtype=np.int64)
        return np.array(faiss.rev_swig_ptr(result.labels, found), dtype=np.int64)

    def _scanner(self, query: Prepared, bits: np.ndarray | None) -> tuple[Any, tuple[Any, ...]]:
        """A FAISS scanner for ``query``; the second value keeps what it points to alive."""
        weights = query.weights
        # IDSelectorBitmap takes the bitmap's size in bytes.
        selector = None if bits is None else faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits))
        quantiser = self._signed if query.integer else self._sq
        # store_pairs=True: a hit's label is its offset in the scanned codes (list 0).
        scanner = quantiser.select_InvertedListScanner(
            faiss.METRIC_INNER_PRODUCT, None, True, selector, False
        )
        scanner.list_no = 0
        scanner.set_query(faiss.swig_ptr(weights))
        return scanner, (weights, selector, bits)
