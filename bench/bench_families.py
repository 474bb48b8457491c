"""Each model family's cost, interleaved in one run on one machine (``models.family``).

For every family, in rounds that alternate the families (so a busy neighbour weighs on both
alike), a fresh process loads the family's bundle and measures:

* start-up: imports and loading the audio and text sides, to the first vector of each;
* one-shots per second: 16 clips of 0.5 s embedded in batches of 8;
* loops: audio-seconds per second over two 30 s loops;
* text latency p50 / p99: one query at a time, 40 distinct short queries;
* peak memory (VmHWM of the process);
* GFLOP per one-shot, per loop second and per text query, counted once per family on the
  PyTorch modules (``torch.utils.flop_counter``), and the share of this machine's sgemm rate
  they ran at.

Run: ``python -m bench.bench_families [--rounds 3] [--size full] [--families clamp3,clap]``.
Beside the families, ``clap-htsat-tiny`` measures the clap family on the HTSAT-tiny audio
encoder of ``laion/clap-htsat-unfused`` (``--families clamp3,clap,clap-htsat-tiny``).
Bundles: ``--bundle DIR`` (one folder may hold both families), written on first use with
random weights of the chosen size (results depend only on the dimensions); the HTSAT-tiny
variant has its own folder beside it. Writes bench/results/families.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import EXPORT_DIR, ROOT, add_results_argument, machine, write_results

CHILD = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
started = time.perf_counter()
import numpy as np
from bench.bench_families import child
print(json.dumps(child(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], started)))
"""


def _mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _queries(count: int) -> list[str]:
    from bench.text_latency import queries

    return [f"{q} {i}" for i, q in enumerate(queries(count))]


def child(family: str, bundle: str, export_dir: str, runtime: str, started: float) -> dict:
    """One family's figures, measured in this process (the parent starts a fresh one each)."""
    from timbre.embedding.embedder import load_audio_embedder, load_text_embedder
    from timbre.settings import load_settings

    models = load_settings(
        models={
            "family": family,
            "bundle": bundle,
            "export_dir": export_dir,
            "runtime": runtime,
        }
    ).models
    text = load_text_embedder(models)
    text.embed(["warm pad"])
    text_ready = time.perf_counter() - started
    audio = load_audio_embedder(models)
    sr = audio.sample_rate
    rng = np.random.default_rng(0)
    shots = [(0.3 * rng.standard_normal(sr // 2)).astype(np.float32) for _ in range(16)]
    audio.embed(shots[:1])
    ready = time.perf_counter() - started
    t0 = time.perf_counter()
    for i in range(0, len(shots), 8):
        audio.embed(shots[i : i + 8])
    shot_s = time.perf_counter() - t0
    loops = [(0.3 * rng.standard_normal(30 * sr)).astype(np.float32) for _ in range(2)]
    t0 = time.perf_counter()
    audio.embed(loops)
    loop_s = time.perf_counter() - t0
    latencies = []
    for q in _queries(40):
        t0 = time.perf_counter()
        text.embed([q])
        latencies.append(time.perf_counter() - t0)
    ms = np.asarray(latencies) * 1e3
    return {
        "runtime": {"audio": audio.runtime, "text": text.runtime},
        "dim": audio.dim,
        "text_ready_s": round(text_ready, 2),
        "startup_s": round(ready, 2),
        "one_shots_per_s": round(len(shots) / shot_s, 2),
        "loop_audio_s_per_s": round(60.0 / loop_s, 2),
        "text_p50_ms": round(float(np.percentile(ms, 50)), 1),
        "text_p99_ms": round(float(np.percentile(ms, 99)), 1),
        "peak_mb": round(_mb("VmHWM")),
    }


def flops(family: str, bundle: Path) -> dict[str, float]:
    """GFLOP of one 0.5 s one-shot, one second of a 30 s loop and one ~11-token query,
    counted on the PyTorch modules."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from timbre.embedding.embedder import load_audio_embedder, load_text_embedder
    from timbre.settings import load_settings

    models = load_settings(
        models={"family": family, "bundle": bundle, "runtime": "torch", "threads": 1}
    ).models
    audio, text = load_audio_embedder(models), load_text_embedder(models)
    sr = audio.sample_rate
    out = {}
    for name, fn, per in (
        ("gflop_per_one_shot", lambda: audio.embed([np.full(sr // 2, 0.1, np.float32)]), 1.0),
        ("gflop_per_loop_s", lambda: audio.embed([np.full(30 * sr, 0.1, np.float32)]), 30.0),
        ("gflop_per_text", lambda: text.embed(["dark rolling bassline in F minor"]), 1.0),
    ):
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            fn()
        out[name] = round(counter.get_total_flops() / 1e9 / per, 2)
    return out


def sgemm_gflops(threads: int) -> float:
    """This machine's float32 matrix-product rate (GFLOP/s) on ``threads`` threads."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    t0 = time.perf_counter()
    for _ in range(10):
        a @ b
    return 10 * 2 * 1024**3 / (time.perf_counter() - t0) / 1e9


HTSAT_TINY = "clap-htsat-tiny"
"""The clap family on the checkpoint with the smaller audio encoder: measured, not a family."""


def family_of(entry: str) -> str:
    return "clap" if entry == HTSAT_TINY else entry


def bundle_of(entry: str, base: Path, size: str) -> Path:
    return base / (f"{size}-htsat-tiny" if entry == HTSAT_TINY else size)


def ensure_bundle(bundle: Path, entry: str, size: str) -> None:
    from timbre.embedding.embedder import get_family
    from timbre.embedding.files import FAMILY_PARTS, write_manifest
    from timbre.embedding.random_clap import write_random_clap

    family = family_of(entry)
    if all((bundle / part).is_dir() for part in FAMILY_PARTS[family]):
        return
    print(f"writing {size} random {entry} weights into {bundle} (one-off)...", flush=True)
    if entry == HTSAT_TINY:
        write_random_clap(bundle, size, seed=0, htsat_tiny=True)  # type: ignore[arg-type]
        source = {"repo": f"timbre/random-{size}-{entry}", "revision": "seed-0"}
        write_manifest(bundle, random_weights=True, sources={"clap": source})
    else:
        get_family(family).write_random(bundle, size, 0)  # type: ignore[arg-type]


def _child(entry: str, bundle: Path, runtime: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, family_of(entry), str(bundle), str(EXPORT_DIR), runtime],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default="clamp3,clap")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", choices=("tiny", "full"), default="full")
    parser.add_argument("--runtime", default="auto", help="models.runtime of every family")
    parser.add_argument(
        "--bundle",
        type=Path,
        default=Path(os.environ.get("TIMBRE_BENCH_BUNDLE", ROOT / "data" / "bench" / "families")),
    )
    add_results_argument(parser, "families")
    args = parser.parse_args()
    families = args.families.split(",")
    bundles = {f: bundle_of(f, args.bundle, args.size) for f in families}
    for family in families:
        ensure_bundle(bundles[family], family, args.size)
    rate_before = sgemm_gflops(os.cpu_count() or 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMBRE_")}
    env["PYTHONPATH"] = str(ROOT)
    runs: dict[str, list[dict[str, Any]]] = {f: [] for f in families}
    first: dict[str, dict[str, Any]] = {}
    for family in families:  # the first start exports the ONNX graphs: reported apart
        first[family] = _child(family, bundles[family], args.runtime, env)
        print(family, "first start", first[family], flush=True)
    for round_ in range(args.rounds):
        for family in families if round_ % 2 == 0 else families[::-1]:
            runs[family].append(_child(family, bundles[family], args.runtime, env))
            print(family, runs[family][-1], flush=True)
    threads = os.cpu_count() or 1
    rate = max(rate_before, sgemm_gflops(threads))
    summary: dict[str, Any] = {}
    for family in families:
        numbers = {
            k: statistics.median(r[k] for r in runs[family])
            for k, v in runs[family][0].items()
            if isinstance(v, int | float)
        }
        numbers.update(flops(family_of(family), bundles[family]))
        # What share of the sgemm rate the one-shot and text paths ran at.
        numbers["one_shot_sgemm_share"] = round(
            numbers["gflop_per_one_shot"] * numbers["one_shots_per_s"] / rate, 3
        )
        numbers["runtime"] = runs[family][0]["runtime"]
        numbers["first_start_s"] = first[family]["startup_s"]  # exports included
        summary[family] = numbers
    write_results(
        args.results,
        {
            "machine": machine(),
            "size": args.size,
            "rounds": args.rounds,
            "sgemm_gflops": round(rate, 1),
            "families": summary,
            "runs": runs,
        },
    )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
