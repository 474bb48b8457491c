"""Device and threads: how the models run, decided once per process.

Importing this module does not import torch: the ONNX Runtime path decides its device, threads
and agreement here too, and must start without it. The functions that need torch import it.
"""

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
    from torch import nn

log = logging.getLogger(__name__)


def cuda_may_be_visible() -> bool:
    """False when no CUDA device can exist, decided without importing torch.

    On Linux the NVIDIA driver exposes ``/dev/nvidia<N>`` for every GPU a process (or
    container) may use; without one torch cannot see a GPU either. Elsewhere only torch knows.
    """
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


def place(module: nn.Module, device: torch.device) -> None:
    """Move a model to ``device`` in place (typed as nn.Module: transformers' own ``to`` is not)."""
    module.to(device)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


ONEDNN_CACHE_ENTRIES = "64"
"""oneDNN compiles and caches one kernel per input shape. One-shots all have different
lengths, so its default 1024-entry cache grew a job by ~600 MB over 60 clips; 64 entries keep
the shapes that repeat (full 5 s windows) and bound the rest."""


def configure_threads(threads: int) -> int:
    """Set torch's intra-op threads (0 = every usable core) and return the count used.

    Also bounds oneDNN's kernel cache, unless the environment already chose a size.
    """
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
    """Hand freed heap pages back to the OS.

    Activations of every clip length leave glibc's heap fragmented, and it keeps freed pages;
    trimming after each batch holds a one-shot job's heap flat (~300 MB instead of growing by
    several MB per clip). Costs about a millisecond.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def agreement(
    reference: np.ndarray | Sequence[np.ndarray], candidate: np.ndarray | Sequence[np.ndarray]
) -> float:
    """Smallest row-wise cosine similarity between two sets of vectors, in float64: float32
    rounds a cosine of 1 - 1e-8 to exactly 1 and would hide a small disagreement.

    Either argument may be one ``[n, d]`` array or several (e.g. MERT features and the final
    embeddings): the result is the smallest cosine over all of them.
    """
    if not isinstance(reference, np.ndarray):
        pairs = list(zip(reference, candidate, strict=True))
        return min(agreement(r, c) for r, c in pairs)
    assert isinstance(candidate, np.ndarray)
    a = reference.astype(np.float64)
    b = candidate.astype(np.float64)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(axis=1).min())


def adopt_if_faithful(
    name: str,
    precision: str,
    *,
    probe: Callable[[], np.ndarray | Sequence[np.ndarray]],
    swap_in: Callable[[], None],
    swap_out: Callable[[], None],
    min_cosine: float,
    reference: str = "fp32",
) -> float:
    """Switch to a faster variant only if it agrees with the reference on the probes.

    Args:
        name: what runs in the variant, for the log.
        precision: which variant (``int8``, ``fp16``, ``bf16``, ``onnxruntime``), for the log.
        probe: computes embeddings of fixed probe inputs with the current variant (one array,
            or several that must all agree).
        swap_in: installs the variant.
        swap_out: restores the reference.
        min_cosine: the smallest acceptable row-wise cosine with the reference.
        reference: what the variant is compared with, for the log.

    Returns:
        The measured agreement (smallest cosine). The reference stays in place when it is
        below ``min_cosine``.
    """
    expected = probe()
    swap_in()
    try:
        measured = agreement(expected, probe())
    except Exception:
        swap_out()
        raise
    if measured < min_cosine:
        swap_out()
        log.warning(
            "%s: %s agrees with %s only to cosine %.9f (< %.9f required); staying on %s",
            name,
            precision,
            reference,
            measured,
            min_cosine,
            reference,
        )
    else:
        log.info(
            "%s: %s adopted, agreement with %s: cosine 1 - %.1e",
            name,
            precision,
            reference,
            1.0 - measured,
        )
    return measured
