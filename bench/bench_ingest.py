"""Ingest job throughput and memory on a full-size random bundle, per runtime.

    python bench/bench_ingest.py [--one-shots 160] [--loops 24] [--half-second 64]
        [--naive-files 6] [--runtimes onnxruntime,torch] [--libraries one_shots,loops,...]
        [--results NAME]

For a one-shot library (0.1-2 s clips), a loop library (4-30 s) and a library of 0.5 s
one-shots, on each runtime (ONNX Runtime, the CPU default, and PyTorch eager), it measures:

* end-to-end files/s and audio-seconds/s of ``timbre ingest`` (a separate process, parallel
  profile), next to the bare model throughput on the same files (decoded beforehand, the same
  batches through ``AudioEmbedder.embed``): target end-to-end >= 85 % of bare. Two runs a
  minute apart on a shared machine differ by more than that margin, so each job also reports
  the models' share of its own wall time (the rest is what the job adds);
* peak memory (RSS summed over the job and its decoding workers, sampled every 50 ms) of each
  profile: targets parallel <= 2 GB, sequential <= 1.2 GB;
* the speed-up over the naive way (models loaded for every file, no batching), measured on a
  few files and compared per file.

The ONNX exports come from the bench's shared export cache (made once, on the first run), so
each job's start-up is a warm one. Writes bench/results/ingest.json
(``--results NAME``: bench/results/NAME.json).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    ROOT,
    add_results_argument,
    bench_models,
    child_env,
    full_bundle,
    machine,
    write_results,
)
from ingest.synthetic import PACKS, SOUNDS, _loop

SR = 44100
WORK = ROOT / "data" / "bench" / "ingest"


def make_one_shots(folder: Path, count: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    names = list(SOUNDS)
    paths = []
    for i in range(count):
        name = names[i % len(names)]
        seconds = float(rng.uniform(0.1, 2.0))
        audio = SOUNDS[name](SR, seconds, rng)
        path = folder / PACKS[i % len(PACKS)][0] / f"{name.title()}_{i:04d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(path, audio)
        paths.append(path)
    return paths


def _write(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    peak = float(np.abs(audio).max()) or 1.0
    sf.write(path, (0.8 * audio / peak).astype(np.float32), SR, subtype="PCM_16")


def make_half_second(folder: Path, count: int, seed: int = 2) -> list[Path]:
    """One-shots of exactly 0.5 s: issue 15's files/s target."""
    rng = np.random.default_rng(seed)
    names = list(SOUNDS)
    paths = []
    for i in range(count):
        name = names[i % len(names)]
        path = folder / "Half" / f"{name.title()}_{i:04d}.wav"
        _write(path, SOUNDS[name](SR, 0.5, rng))
        paths.append(path)
    return paths


def make_loops(folder: Path, count: int, seed: int = 1) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        instrument = ("drums", "bass", "pad", "pluck")[i % 4]
        bpm = float(rng.choice([90.0, 124.0, 128.0, 174.0]))
        target_s = float(rng.uniform(4.0, 30.0))
        bars = max(1, round(target_s * bpm / 240.0))
        audio = _loop(instrument, SR, bpm, bars, rng)
        path = folder / f"Loops {int(bpm)}" / f"{instrument.title()}_Loop_{int(bpm)}bpm_{i:03d}.wav"
        _write(path, audio)
        paths.append(path)
    return paths


def _decode(path: Path) -> np.ndarray:
    from timbre.audio.decode import decode_file

    return decode_file(path, sample_rate=24000, max_duration_s=1800, max_file_bytes=2**31).samples


def bare_model(bundle: Path, paths: list[Path], batch_files: int, runtime: str) -> dict[str, float]:
    """The models alone on pre-decoded audio, in the job's batch size: the ceiling."""
    from timbre.embedding.embedder import load_audio_embedder
    from timbre.settings import load_settings

    models = load_settings(models=bench_models(bundle, runtime=runtime)).models
    embedder = load_audio_embedder(models)
    assert embedder.runtime == runtime, embedder.runtime
    waves = [_decode(p) for p in paths]
    audio_s = sum(len(w) for w in waves) / embedder.sample_rate
    start = time.perf_counter()
    for i in range(0, len(waves), batch_files):
        embedder.embed(waves[i : i + batch_files])
    elapsed = time.perf_counter() - start
    return {
        "files_per_s": len(waves) / elapsed,
        "audio_s_per_s": audio_s / elapsed,
        "seconds": elapsed,
    }


def run_job(bundle: Path, library: Path, data: Path, profile: str, runtime: str) -> dict[str, Any]:
    """``timbre ingest`` in its own process; peak RSS summed over it and its workers."""
    shutil.rmtree(data, ignore_errors=True)
    env = child_env(
        data, bundle, TIMBRE_INGEST__PROGRESS_INTERVAL_S="30", TIMBRE_MODELS__RUNTIME=runtime
    )
    cmd = [sys.executable, "-m", "timbre.cli", "ingest", str(library), "--profile", profile]
    cmd += ["--no-snapshot", "--json"]
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    parent = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    out, _ = proc.communicate()
    wall = time.perf_counter() - start
    summary = json.loads(out)
    counts = summary["counts"]
    stages = summary["stage_seconds"]
    return {
        "profile": profile,
        "runtime": runtime,
        "process_wall_s": wall,
        # Process start to the job's first stage: imports, model load, store open.
        "startup_s": wall - summary["wall_s"],
        "job_wall_s": summary["wall_s"],
        "files": counts["indexed"],
        "audio_s": counts["audio_s"],
        "files_per_s": summary["throughput"]["files_per_s"],
        "audio_s_per_s": summary["throughput"]["audio_s_per_s"],
        "stage_seconds": summary["stage_seconds"],
        # The models' share of the job's own wall time: what the job adds around them, measured
        # inside one process (steadier on a shared machine than two runs' throughputs).
        "model_share": (stages.get("mert", 0.0) + stages.get("tower", 0.0)) / summary["wall_s"],
        "peak_rss_mb": peak / 2**20,
    }


def naive(bundle: Path, paths: list[Path], runtime: str) -> dict[str, float]:
    """The way without a job: load the models for every file, embed it alone."""
    from timbre.embedding.embedder import load_audio_embedder
    from timbre.settings import load_settings

    models = load_settings(models=bench_models(bundle, runtime=runtime)).models
    start = time.perf_counter()
    for path in paths:
        embedder = load_audio_embedder(models)
        embedder.embed([_decode(path)])
    elapsed = time.perf_counter() - start
    return {"files": len(paths), "seconds_per_file": elapsed / len(paths)}


def show(label: str, row: dict[str, Any]) -> None:
    peak = f", peak {row['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in row else ""
    share = f", models {100 * row['model_share']:.0f}% of the job" if "model_share" in row else ""
    print(
        f" {label}: {row['files_per_s']:.2f} files/s, {row['audio_s_per_s']:.1f} audio-s/s"
        f"{peak}{share}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--one-shots", type=int, default=160)
    parser.add_argument("--loops", type=int, default=24)
    parser.add_argument("--half-second", type=int, default=64)
    parser.add_argument("--naive-files", type=int, default=6)
    parser.add_argument("--runtimes", default="onnxruntime,torch")
    parser.add_argument("--libraries", default="one_shots,loops,half_second")
    parser.add_argument("--profiles", default="parallel,sequential")
    add_results_argument(parser, "ingest")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    bundle = full_bundle()
    from timbre.settings import load_settings

    batch_files = load_settings().ingest.batch_files.cpu
    makers = {"one_shots": make_one_shots, "loops": make_loops, "half_second": make_half_second}
    counts = {"one_shots": args.one_shots, "loops": args.loops, "half_second": args.half_second}
    runtimes, profiles = args.runtimes.split(","), args.profiles.split(",")
    results: dict[str, Any] = {
        "machine": machine(),
        "batch_files": batch_files,
        "runtimes": runtimes,
        "libraries": {},
    }
    for name in args.libraries.split(","):
        library = WORK / f"lib-{name.replace('_', '-')}"
        shutil.rmtree(library, ignore_errors=True)
        paths = makers[name](library, counts[name])
        print(f"{name}: {len(paths)} files", flush=True)
        per_runtime: dict[str, Any] = {}
        for runtime in runtimes:
            bare = bare_model(bundle, paths, batch_files, runtime)
            show(f"{runtime} bare model", bare)
            jobs = {
                p: run_job(bundle, library, WORK / f"data-{name}-{p}", p, runtime) for p in profiles
            }
            for job in jobs.values():
                show(f"{runtime} {job['profile']:>11}", job)
            first = jobs[profiles[0]]
            ratio = first["files_per_s"] / bare["files_per_s"]
            slow = naive(bundle, paths[: args.naive_files], runtime)
            speedup = slow["seconds_per_file"] * first["files_per_s"]
            print(
                f"  {runtime}: end-to-end / bare = {ratio:.2f}, start-up"
                f" {first['startup_s']:.1f} s; naive {slow['seconds_per_file']:.2f} s/file"
                f" -> {speedup:.1f}x",
                flush=True,
            )
            per_runtime[runtime] = {
                "bare_model": bare,
                "jobs": jobs,
                "end_to_end_over_bare": ratio,
                "naive": slow,
                "speedup_over_naive": speedup,
            }
        results["libraries"][name] = {"files": len(paths), **per_runtime}
    results["targets"] = {
        "end_to_end_over_bare": 0.85,
        "parallel_peak_mb": 2048,
        "sequential_peak_mb": 1229,
        "half_second_files_per_s": 12.0,
        "speedup_over_naive": "15-30x (original system)",
    }
    write_results(args.results, results)


if __name__ == "__main__":
    main()
