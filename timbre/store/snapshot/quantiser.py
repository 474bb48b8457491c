"""The SQ8 first pass: FAISS's 8-bit scalar quantiser, its codes, and a proven error bound.

Each dimension is quantised to 256 levels over its range across *every* stored vector (nothing
is clipped); the export measures ``max_error_i = max |x_i - decode(code)_i|``, so for any query
``q`` and stored ``x``: ``|q . x - q . decode(code(x))| <= sum_i |q_i| max_error_i`` (+ float
rounding). The integer kernel (``QT_8bit_direct_signed``, about twice as fast) scores the query
weights ``w_i = q_i vdiff_i / 255`` rounded as ``w = s * w8 + e``; by Cauchy-Schwarz the
rounding adds at most ``||e||_2 * R``, ``R`` the largest ``||c - 127.5||_2`` of any stored row.
``Prepared.bound`` is the sum, which the scan uses to prove that no vector left out of the exact
re-rank could have entered the top k (:mod:`~.scan`). Ranges of the codes are scanned with
FAISS's SIMD kernels on several cores at once (its calls release the GIL).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

ROUNDING_MARGIN = 1e-4
"""Added to the bound for float32 rounding (each 768-term product is within ~5e-5)."""

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
    """One query, ready for the first pass: kernel ``weights`` (integers in [-127, 127] when
    ``integer``, else the query), approximate score = ``offset + scale * kernel score``, and
    ``bound``, the largest gap between that and the true score."""

    weights: np.ndarray
    scale: float
    offset: float
    bound: float
    integer: bool


class Sq8:
    """The trained quantiser of one snapshot: ``params`` float32 ``[3, dim]`` (``vmin``,
    ``vdiff``, ``max_error``); without the codes' ``radius`` it scores with the float kernel."""

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
        """Approximate top ``k`` (scores, offsets into the C-contiguous ``codes``), unordered,
        among the rows ``bits`` (a little-endian bitmap; None = all) lets through."""
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
