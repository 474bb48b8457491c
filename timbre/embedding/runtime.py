"""Device, threads, memory and the agreement measure: how the models run, decided once per
process. Importing this module does not import torch; the functions that need it do."""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

ONEDNN_CACHE_ENTRIES = "64"
"""oneDNN caches one kernel per input shape and one-shots all differ in length: its default
1024 entries grew a job by ~600 MB over 60 clips; 64 keep the shapes that repeat."""


def cuda_may_be_visible() -> bool:
    """False when no CUDA device can exist, decided without importing torch (on Linux the
    driver exposes ``/dev/nvidia<N>`` for every GPU a process may use)."""
    if sys.platform == "darwin":
        return False
    if sys.platform.startswith("linux"):
        return any(p.name[len("nvidia") :].isdigit() for p in Path("/dev").glob("nvidia*"))
    return True


def device_type(preference: str) -> str:
    """``cpu`` or ``cuda`` for a ``models.device`` setting; imports torch only when a GPU may
    be visible (``auto``) or is asked for (``cuda``)."""
    if preference == "cpu" or (preference == "auto" and not cuda_may_be_visible()):
        return "cpu"
    return select_device(preference).type


def select_device(preference: str) -> torch.device:
    """``auto`` picks CUDA when a GPU is visible; ``cuda`` without one is an error."""
    import torch

    if preference == "cpu":
        return torch.device("cpu")
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("models.device is 'cuda' but torch sees no CUDA device")
        return torch.device("cuda")
    return torch.device("cpu")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def configure_threads(threads: int) -> int:
    """Set torch's intra-op threads (0 = every usable core) and bound oneDNN's kernel cache
    (unless the environment chose a size); returns the thread count."""
    import torch

    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_CACHE_ENTRIES)
    count = threads or usable_cores()
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def release_memory() -> None:
    """Hand freed heap pages back to the OS (~1 ms): activations of every clip length leave
    glibc's heap fragmented, and trimming after each batch holds a job's heap flat."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def agreement(
    reference: np.ndarray | Sequence[np.ndarray], candidate: np.ndarray | Sequence[np.ndarray]
) -> float:
    """Smallest row-wise cosine between two ``[n, d]`` arrays (or lists of them), in float64:
    float32 rounds 1 - 1e-8 to exactly 1 and would hide a small disagreement."""
    if not isinstance(reference, np.ndarray):
        pairs = list(zip(reference, candidate, strict=True))
        return min(agreement(r, c) for r, c in pairs)
    assert isinstance(candidate, np.ndarray)
    a = reference.astype(np.float64)
    b = candidate.astype(np.float64)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(axis=1).min())


def judge(name: str, measured: float, min_cosine: float) -> bool:
    """Log whether an ONNX graph agrees with PyTorch eager to ``min_cosine``, and return it."""
    if measured < min_cosine:
        log.warning(
            "%s: onnxruntime agrees with PyTorch eager only to cosine %.9f (< %.9f required); "
            "staying on PyTorch eager",
            name,
            measured,
            min_cosine,
        )
        return False
    log.info(
        "%s: onnxruntime adopted, agreement with PyTorch eager: cosine 1 - %.1e", name, 1 - measured
    )
    return True
