"""Shared helpers for the benchmarks: a full-size random bundle, timing, results files."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
EXPORT_DIR = Path(os.environ.get("TIMBRE_BENCH_EXPORTS", ROOT / "data" / "bench" / "onnx"))
"""One ONNX export cache for every bench process (each job has its own data dir): the
full-size exports take minutes once, then every start loads them in well under a second."""


def bench_models(bundle: Path, **extra: Any) -> dict[str, Any]:
    """The ``models`` settings of a bench process: the bundle and the shared export cache."""
    return {"bundle": bundle, "export_dir": EXPORT_DIR, **extra}


def child_env(data: Path, bundle: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``timbre`` child process: no inherited TIMBRE_* settings, this
    data dir and bundle, the shared export cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMBRE_")}
    env.update(
        TIMBRE_DATA_DIR=str(data),
        TIMBRE_MODELS__BUNDLE=str(bundle),
        TIMBRE_MODELS__EXPORT_DIR=str(EXPORT_DIR),
        PYTHONWARNINGS="ignore",
        **extra,
    )
    return env


def full_bundle(path: Path | None = None) -> Path:
    """A full-size random-weight bundle (official dimensions), written once and reused."""
    target = path or Path(
        os.environ.get("TIMBRE_BENCH_BUNDLE", ROOT / "data" / "bench" / "full-bundle")
    )
    if not (target / "timbre-models.json").is_file():
        from timbre.embedding.random_bundle import write_random_bundle

        print(f"writing a full-size random bundle to {target} (one-off, ~2 GB)...", flush=True)
        write_random_bundle(target, "full", seed=0)
    return target


def timed(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    """Wall-clock seconds of ``repeats`` calls (after one warm-up call) and the last result."""
    result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def percentile_ms(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples) * 1e3, q))


def median(samples: list[float]) -> float:
    return float(statistics.median(samples))


def machine() -> dict[str, Any]:
    import torch

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "simd": _cpu_simd(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "onnxruntime": _version("onnxruntime"),
        "faiss_simd": _faiss_simd(),
    }


def _faiss_simd() -> str | None:
    """The kernels FAISS dispatches to (``FAISS_SIMD_LEVEL=AVX2`` holds an AVX-512 machine to
    the AVX2 ones, what a Zen 3 runs)."""
    try:
        import faiss

        return str(faiss.SIMDConfig.get_level_name())
    except (ImportError, AttributeError):
        return None


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "absent"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
"""The instruction sets that change what the kernels here run (a "Xeon Processor" or "EPYC"
model name alone does not say): FAISS and ONNX Runtime dispatch on them."""


def _cpu_simd() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return [f for f in SIMD_FLAGS if f in flags]
    except OSError:
        pass
    return []


def add_results_argument(parser: argparse.ArgumentParser, default: str) -> None:
    """``--results NAME``: write bench/results/NAME.json (a run on another machine gets its own
    file, beside the one it would otherwise replace)."""
    parser.add_argument(
        "--results", default=default, help=f"results file name under bench/results/ ({default})"
    )


def write_results(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **data}
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"results written to {path.relative_to(ROOT)}")
    return path
