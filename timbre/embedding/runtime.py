"""Device, threads and reduced precision: how the models run, decided once per process."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager

import numpy as np
import torch
from torch import nn

from timbre.errors import ConfigError

log = logging.getLogger(__name__)

HALF = {"fp16": torch.float16, "bf16": torch.bfloat16}
"""Precisions run as autocast: matrix products in 16 bits, norms and reductions in fp32."""


def select_device(preference: str) -> torch.device:
    """``auto`` picks CUDA when a GPU is visible; ``cuda`` without one is an error."""
    if preference == "cpu":
        return torch.device("cpu")
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("models.device is 'cuda' but torch sees no CUDA device")
        return torch.device("cuda")
    return torch.device("cpu")


def resolve_precision(requested: str, device: torch.device, setting: str) -> str:
    """The precision to try on ``device``: ``auto`` is fp32 on a CPU and fp16 on a GPU.

    Raises:
        ConfigError: the precision has no kernels on that device (int8 dynamic quantisation is
            CPU-only; fp16 has no fast CPU kernels).
    """
    if requested == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    if requested == "int8" and device.type != "cpu":
        raise ConfigError(
            f"{setting} is int8, which runs on the CPU only; use fp16 or bf16 on {device.type}"
        )
    if requested == "fp16" and device.type == "cpu":
        raise ConfigError(f"{setting} is fp16, which has no fast CPU kernels; use int8 or bf16")
    return requested


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager[object]:
    """Mixed precision for a forward pass, or nothing when ``dtype`` is None (fp32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


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


def quantize_int8(module: nn.Module) -> nn.Module:
    """Dynamic int8 quantisation of the Linear layers: weights int8 per output channel (closer
    to fp32 than per-tensor at the same speed), activations quantised per batch."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's migration notice to torchao
        return quantize_dynamic(module, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)


def agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Smallest row-wise cosine similarity between two sets of vectors, in float64: float32
    rounds a cosine of 1 - 1e-8 to exactly 1 and would hide a small disagreement."""
    a = reference / np.linalg.norm(reference.astype(np.float64), axis=1, keepdims=True)
    b = candidate / np.linalg.norm(candidate.astype(np.float64), axis=1, keepdims=True)
    return float((a * b).sum(axis=1).min())


def adopt_if_faithful(
    name: str,
    precision: str,
    *,
    probe: Callable[[], np.ndarray],
    swap_in: Callable[[], None],
    swap_out: Callable[[], None],
    min_cosine: float,
) -> float:
    """Switch to a reduced-precision variant only if it agrees with fp32 on the probes.

    Args:
        name: what runs in reduced precision, for the log.
        precision: which one (``int8``, ``fp16``, ``bf16``), for the log.
        probe: computes embeddings of fixed probe inputs with the current variant.
        swap_in: installs the reduced-precision variant.
        swap_out: restores the fp32 variant.
        min_cosine: the smallest acceptable row-wise cosine with fp32.

    Returns:
        The measured agreement (smallest cosine). The fp32 variant stays in place when it is
        below ``min_cosine``.
    """
    reference = probe()
    swap_in()
    measured = agreement(reference, probe())
    if measured < min_cosine:
        swap_out()
        log.warning(
            "%s: %s agrees with fp32 only to cosine %.6f (< %.6f required); staying on fp32",
            name,
            precision,
            measured,
            min_cosine,
        )
    else:
        log.info("%s: %s adopted, agreement with fp32 %.6f", name, precision, measured)
    return measured
