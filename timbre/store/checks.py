"""What a point or a query vector must be before it reaches Qdrant."""

from __future__ import annotations

import numpy as np

from timbre.errors import InvalidPointError
from timbre.store.interface import Point
from timbre.store.payload import point_id, with_derived

NORM_TOLERANCE = 1e-3
"""How far from 1 a vector's L2 norm may be: float32 normalisation lands within ~1e-7, so
anything further is an un-normalised vector, which would score differently in FAISS."""


def check_vector(vector: np.ndarray, dim: int, what: str) -> np.ndarray:
    """``vector`` as float32 ``[dim]`` if it is finite and L2-normalised.

    Raises:
        InvalidPointError: wrong shape, non-finite values, or not normalised.
    """
    v = np.asarray(vector, dtype=np.float32)
    if v.shape != (dim,):
        raise InvalidPointError(f"{what}: vector shape {v.shape}, expected ({dim},)")
    if not np.all(np.isfinite(v)):
        raise InvalidPointError(f"{what}: vector has NaN or infinite values")
    norm = float(np.linalg.norm(v))
    if abs(norm - 1.0) > NORM_TOLERANCE:
        raise InvalidPointError(f"{what}: vector norm is {norm:.4f}; vectors must be L2-normalised")
    return v


def checked_point(point: Point, dim: int) -> Point:
    """``point`` with a checked vector and its derived payload fields, ready to write.

    Raises:
        InvalidPointError: the id is not ``point_id(content_sha256)``, the payload has no
            paths, or the vector is malformed (see :func:`check_vector`).
    """
    sha = point.payload.get("content_sha256")
    if not isinstance(sha, str) or point_id(sha) != point.id:
        raise InvalidPointError(
            f"point {point.id}: id must be point_id(payload['content_sha256']) (got {sha!r})"
        )
    if not point.payload.get("paths"):
        raise InvalidPointError(f"point {point.id}: payload has no paths")
    vector = check_vector(point.vector, dim, f"point {point.id}")
    return Point(point.id, vector, with_derived(point.payload))
