"""MERT's achieved FLOP rate against this machine's sgemm, and where its time goes.

Used by bench/bench_embedding.py. Two measurements:

* :func:`bench_sgemm_share`: MERT's FLOPs (counted by torch on the eager model) over its time
  per window, on 5 s windows and 0.5 s clips, as a share of the sgemm rate measured between
  the runs (same process, same machine).
* :func:`mert_op_profile`: ONNX Runtime's own per-node profile of the exported MERT graph,
  split into the GEMM-class nodes (MatMul, Conv, Gemm: their FLOPs counted from the shapes
  the profile records) and the rest (attention's softmax, norms, GELU, adds, copies). From
  it, the share MERT could reach if every GEMM-class node ran at exactly the sgemm rate and
  the rest took what it takes now: the ceiling the sgemm-share target is judged against.
  The rest is bound by memory traffic, which does not get faster with wider SIMD, so on a
  machine whose sgemm is several times faster (AVX-512) that ceiling drops.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import ROOT, median, timed

SR = 24000
SHARE_CASES = {"5s_window": (5.0, 2), "0.5s_clip": (0.5, 16)}
"""Window length (s) and how many windows each sample times."""
GEMM_OPS = ("MatMul", "Conv", "Gemm", "FusedMatMul", "FusedConv", "FusedGemm")


def clips(seconds: float, count: int, seed: int = 0) -> list[np.ndarray]:
    """Noise-excited decaying tones: cheap to make, and MERT's cost does not depend on content."""
    rng = np.random.default_rng(seed)
    n = round(seconds * SR)
    t = np.arange(n) / SR
    out = []
    for _ in range(count):
        f = rng.uniform(40, 2000)
        x = np.sin(2 * np.pi * f * t) * np.exp(
            -t * rng.uniform(0.2, 8)
        ) + 0.05 * rng.standard_normal(n)
        out.append(x.astype(np.float32))
    return out


def share_windows(case: str) -> list[np.ndarray]:
    seconds, count = SHARE_CASES[case]
    return [w / np.std(w) for w in clips(seconds, count, seed=7)]


def mert_flops(torch_audio: Any, samples: int) -> float:
    """FLOPs of one MERT window of ``samples`` (counted by torch on the eager model)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    window = torch.from_numpy(clips(samples / SR, 1)[0])[None]
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        torch_audio.mert.model(window, output_hidden_states=True)
    return float(counter.get_total_flops())


def sgemm_rate() -> float:
    """fp32 matrix-multiply FLOP/s this machine sustains now (2048^3, torch's BLAS)."""
    import torch

    a = torch.randn(2048, 2048)
    times, _ = timed(lambda: a @ a, 5)
    return 2 * 2048**3 / median(times)


def bench_sgemm_share(audios: dict[str, Any], torch_audio: Any, repeats: int) -> dict[str, Any]:
    """MERT's achieved FLOP rate as a share of sgemm, on a 5 s window and on 0.5 s clips,
    each runtime in turn and the sgemm rate measured between them (same run, same machine)."""
    flops = {case: mert_flops(torch_audio, round(s * SR)) for case, (s, _) in SHARE_CASES.items()}
    rates: list[float] = []
    per_window: dict[tuple[str, str], list[float]] = {
        (r, c): [] for r in audios for c in SHARE_CASES
    }
    for _ in range(repeats):
        rates.append(sgemm_rate())
        for case in SHARE_CASES:
            windows = share_windows(case)
            for name, audio in audios.items():
                audio.mert.window_vectors(windows[:1], 1)  # warm-up
                start = time.perf_counter()
                audio.mert.window_vectors(windows, audio.mert_batch_windows)
                per_window[name, case].append((time.perf_counter() - start) / len(windows))
    sgemm = median(rates)
    out: dict[str, Any] = {
        "sgemm_gflops": sgemm / 1e9,
        "sgemm_gflops_samples": [r / 1e9 for r in rates],
        "mert_gflop": {case: f / 1e9 for case, f in flops.items()},
        "mert_gflop_per_audio_s": flops["5s_window"] / 5.0 / 1e9,
        "mert_max_x_realtime": sgemm / (flops["5s_window"] / 5.0),
    }
    for (name, case), samples in per_window.items():
        seconds = median(samples)
        share = flops[case] / seconds / sgemm
        out.setdefault(name, {})[case] = {"ms_per_window": 1e3 * seconds, "sgemm_share": share}
        print(f"  {name:>11} {case:>10}: {1e3 * seconds:7.1f} ms, {100 * share:5.1f} % of sgemm")
    print(f"  sgemm {sgemm / 1e9:.1f} GFLOPS", flush=True)
    return out


def node_flops(op: str, inputs: list[list[int]], output: list[int]) -> float:
    """FLOPs of one GEMM-class node from the shapes ONNX Runtime's profile records.

    MatMul / Gemm: 2 * output elements * the shared (reduced) dimension. Conv: 2 * output
    elements * (input channels per group) * kernel size, the weight being ``[out, in/g, k...]``.
    """
    out_elems = float(np.prod(output))
    if op in ("Conv", "FusedConv"):
        weight = inputs[1]
        return 2.0 * out_elems * float(np.prod(weight[1:]))
    return 2.0 * out_elems * inputs[0][-1]


def is_kernel(event: dict[str, Any]) -> bool:
    """One node's kernel time in ONNX Runtime's profile (not a session or fence event)."""
    return event.get("cat") == "Node" and str(event.get("name", "")).endswith("_kernel_time")


def _shapes(entries: list[dict[str, list[int]]]) -> list[list[int]]:
    """``[{"float": [1, 512, 11999]}, ...]`` (the profile's form) -> the shapes."""
    return [next(iter(e.values())) for e in entries]


def profile_in_fresh_process(
    graph_path: Path, threads: int, sgemm_flops: float, mert_gflop: dict[str, float]
) -> dict[str, Any]:
    """:func:`mert_op_profile` in a process of its own, as an ingest job runs: no torch and
    no other sessions beside it (in the bench's own process, after torch's sgemm and eager
    MERT, the same graph's instance norm took 3x as long)."""
    args = [str(graph_path), str(threads), repr(sgemm_flops), json.dumps(mert_gflop)]
    done = subprocess.run(
        [sys.executable, "-m", "bench.mert_share", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    sys.stdout.write("".join(f"{line}\n" for line in done.stdout.splitlines()[:-1]))
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def mert_op_profile(
    graph_path: Path, threads: int, sgemm_flops: float, mert_gflop: dict[str, float], runs: int = 3
) -> dict[str, Any]:
    """Where the exported MERT graph's time goes, per case of :data:`SHARE_CASES` (one window
    per call), from ONNX Runtime's node profile, and the sgemm share that bounds.

    ``ceiling_share`` is the share MERT would reach if its GEMM-class nodes ran at exactly
    ``sgemm_flops`` and the rest of the graph took the kernel time measured here (the
    session's own overhead between nodes left out, so the bound is generous).
    """
    import onnxruntime as ort

    from timbre.embedding.onnx_backend import PROVIDERS, session_options

    out: dict[str, Any] = {}
    for case in SHARE_CASES:
        window = share_windows(case)[0][None]
        with tempfile.TemporaryDirectory() as tmp:
            options = session_options(threads)
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(tmp) / "mert")
            session = ort.InferenceSession(str(graph_path), options, PROVIDERS)
            session.run(None, {"windows": window})  # warm-up, dropped below
            start = time.perf_counter()
            for _ in range(runs):
                session.run(None, {"windows": window})
            wall = (time.perf_counter() - start) / runs
            events = json.loads(Path(session.end_profiling()).read_text())
        kernels = [e for e in events if is_kernel(e)]
        per_call = len(kernels) // (runs + 1)
        row = summarise(kernels[per_call:], runs, sgemm_flops, 1e9 * mert_gflop[case])
        out[case] = {"profiled_wall_ms": 1e3 * wall, **row}
        print(
            f"  {case:>10}: {1e3 * wall:.1f} ms profiled; GEMM-class {row['gemm_ms']:.1f} ms at "
            f"{row['gemm_gflops']:.0f} GFLOPS, the rest {row['other_ms']:.1f} ms "
            f"({', '.join(f'{k} {v:.1f}' for k, v in list(row['other_by_op_ms'].items())[:4])}); "
            f"ceiling {100 * row['ceiling_share']:.1f} % of sgemm",
            flush=True,
        )
    return out


def summarise(
    kernels: list[dict[str, Any]], runs: int, sgemm: float, total_flops: float
) -> dict[str, Any]:
    """Per-call milliseconds by op type, the GEMM-class FLOPs and rate, and the ceiling share.

    ``total_flops`` is torch's count for the window (:func:`mert_flops`). On MERT it equals
    the GEMM-class count from the profile's shapes to the FLOP: both count the linear layers
    and convolutions, and neither the attention's fused products.
    """
    ms_by_op: dict[str, float] = defaultdict(float)
    gemm_flops = 0.0
    for event in kernels:
        args = event["args"]
        op = args["op_name"]
        ms_by_op[op] += event["dur"] / 1e3 / runs
        if op in GEMM_OPS:
            output = _shapes(args["output_type_shape"])[0]
            gemm_flops += node_flops(op, _shapes(args["input_type_shape"]), output) / runs
    gemm_ms = sum(ms for op, ms in ms_by_op.items() if op in GEMM_OPS)
    other = {op: ms for op, ms in ms_by_op.items() if op not in GEMM_OPS}
    other_ms = sum(other.values())
    gemm_rate = gemm_flops / (gemm_ms / 1e3) if gemm_ms else 0.0
    at_sgemm_ms = 1e3 * gemm_flops / sgemm
    return {
        "kernel_ms": gemm_ms + other_ms,
        "gemm_ms": gemm_ms,
        "gemm_gflop": gemm_flops / 1e9,
        "gemm_gflops": gemm_rate / 1e9,
        "gemm_share_of_sgemm": gemm_rate / sgemm,
        "other_ms": other_ms,
        "other_by_op_ms": dict(sorted(other.items(), key=lambda kv: -kv[1])),
        "gemm_at_sgemm_ms": at_sgemm_ms,
        "ceiling_share": total_flops / sgemm / ((at_sgemm_ms + other_ms) / 1e3),
    }


if __name__ == "__main__":  # python -m bench.mert_share GRAPH THREADS SGEMM_FLOPS GFLOP_JSON
    profile = mert_op_profile(
        Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4])
    )
    print(json.dumps(profile))
