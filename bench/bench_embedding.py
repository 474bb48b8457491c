"""Embedding speed, memory and reduced-precision agreement on a full-size random bundle.

    python bench/bench_embedding.py [--bundle DIR] [--repeats 3] [--queries 200]

Measures MERT and CLaMP3-tower time per audio-second and per file for one-shots and loops
(0.25 s ... 30 s), end-to-end files/s and times real time, text-query encode latency
(p50/p99, one query at a time as the API does), peak memory of the ingest model set (MERT +
audio tower) and of the API model set (text tower, then the audio side), and the agreement
and speed of int8 against fp32 on every benchmark clip and query. Random weights cost
exactly the compute of real ones. Writes bench/results/embedding.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import full_bundle, machine, median, percentile_ms, timed, write_results

SR = 24000
CLIP_SECONDS = (0.25, 0.5, 1.0, 2.0, 8.0, 30.0)
TARGETS = {"oneshot_0.5s_files_per_s": 20.0, "loop_x_realtime": 25.0, "text_p99_ms": 15.0}
WORDS = (
    "punchy techno kick",
    "warm atmospheric pad",
    "crispy closed hat",
    "dusty lofi snare",
    "deep sub bass",
    "bright pluck",
    "vocal chop",
    "reverse cymbal",
    "metallic perc",
    "analog brass stab",
    "808 cowbell",
    "tape saturated drum loop",
    "glassy bell arp",
    "dark rolling bassline",
    "shaker groove",
    "riser fx",
    "impact hit",
    "granular texture",
    "detuned saw lead",
    "soft rhodes chord",
)
MODIFIERS = (
    "",
    " at 124 BPM",
    " in F minor",
    " with long reverb",
    ", dry",
    " for house",
    " 90s style",
)


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


def queries(count: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"{rng.choice(WORDS)}{rng.choice(MODIFIERS)}" for _ in range(count)]


def bench_audio(embedder: Any, repeats: int) -> list[dict[str, Any]]:
    rows = []
    for seconds in CLIP_SECONDS:
        count = max(4, min(32, round(32 / seconds)))
        batch = clips(seconds, count, seed=int(seconds * 100))
        mert_times, feats = timed(lambda b=batch: embedder.features(b), repeats)
        tower_times, _ = timed(lambda f=feats: embedder.embed_features(f), repeats)
        mert_s, tower_s = median(mert_times), median(tower_times)
        audio_s = seconds * count
        total = mert_s + tower_s
        row = {
            "clip_s": seconds,
            "files": count,
            "mert_ms_per_file": 1e3 * mert_s / count,
            "tower_ms_per_file": 1e3 * tower_s / count,
            "mert_s_per_audio_s": mert_s / audio_s,
            "tower_s_per_audio_s": tower_s / audio_s,
            "files_per_s": count / total,
            "x_realtime": audio_s / total,
        }
        rows.append(row)
        print(
            f"  {seconds:>5.2f} s clips x{count:>2}: MERT {row['mert_ms_per_file']:8.1f} ms/file, "
            f"tower {row['tower_ms_per_file']:6.1f} ms/file -> {row['files_per_s']:6.2f} files/s, "
            f"{row['x_realtime']:5.2f}x real time",
            flush=True,
        )
    return rows


def bench_text(embedder: Any, texts: list[str]) -> dict[str, Any]:
    for t in texts[:5]:
        embedder.embed([t])
    latencies = []
    for t in texts:
        start = time.perf_counter()
        embedder.embed([t])
        latencies.append(time.perf_counter() - start)
    tokens = [len(embedder.tower.token_ids(t)) for t in texts]
    return {
        "queries": len(texts),
        "median_tokens": float(np.median(tokens)),
        "p50_ms": percentile_ms(latencies, 50),
        "p99_ms": percentile_ms(latencies, 99),
    }


def roofline(embedder: Any) -> dict[str, float]:
    """FLOPs MERT spends per audio-second (counted by torch on a 5 s window) against the fp32
    matrix-multiply rate this machine sustains: the best real-time factor any fp32 CPU
    implementation could reach here."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    window = torch.from_numpy(clips(5.0, 1)[0])[None]
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        embedder.mert.model(window, output_hidden_states=True)
    flops_per_audio_s = counter.get_total_flops() / 5.0
    a = torch.randn(2048, 2048)
    times, _ = timed(lambda: a @ a, 5)
    sgemm = 2 * 2048**3 / median(times)
    return {
        "mert_gflop_per_audio_s": flops_per_audio_s / 1e9,
        "sgemm_gflops": sgemm / 1e9,
        "mert_max_x_realtime": sgemm / flops_per_audio_s,
    }


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float((a * b).sum(axis=1).min())  # both L2-normalised


PEAK_SCRIPT = """
import json, resource, sys, warnings
warnings.simplefilter("ignore")
import numpy as np
from timbre.settings import load_settings
from timbre.embedding.embedder import load_audio_embedder, load_text_embedder
models = load_settings(models={"bundle": sys.argv[1]}).models
out = {}
if sys.argv[2] == "api":
    text = load_text_embedder(models); text.embed(["warm pad"])
    out["text_only_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
audio = load_audio_embedder(models)
audio.embed([np.zeros(24000 * 8, np.float32) + 0.01])
out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def peak_memory(bundle: Path, model_set: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(bundle), model_set],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    bundle = full_bundle(args.bundle)

    from timbre.embedding.embedder import load_audio_embedder, load_text_embedder
    from timbre.settings import load_settings

    fp32 = load_settings(models={"bundle": bundle}).models
    int8 = fp32.model_copy(
        update={"audio_precision": "int8", "text_precision": "int8", "precision_min_cosine": 0.0}
    )
    results: dict[str, Any] = {
        "machine": machine(),
        "bundle": "random weights, official dimensions",
    }

    print("memory (separate processes):", flush=True)
    results["memory_mb"] = {
        "ingest": peak_memory(bundle, "ingest"),
        "api": peak_memory(bundle, "api"),
    }
    print(f"  {results['memory_mb']}", flush=True)

    print("audio, fp32:", flush=True)
    start = time.perf_counter()
    audio = load_audio_embedder(fp32)
    results["audio_load_s"] = time.perf_counter() - start
    results["roofline"] = roofline(audio)
    print(f"  {results['roofline']}", flush=True)
    results["audio_fp32"] = bench_audio(audio, args.repeats)

    print("text, fp32:", flush=True)
    texts = queries(args.queries)
    start = time.perf_counter()
    text = load_text_embedder(fp32)
    results["text_load_s"] = time.perf_counter() - start
    results["text_fp32"] = bench_text(text, texts)
    print(f"  {results['text_fp32']}", flush=True)

    print("int8 (agreement with fp32 on every benchmark clip and query):", flush=True)
    every_clip = [c for s in CLIP_SECONDS for c in clips(s, 4, seed=int(s * 100))]
    ref_audio, ref_text = audio.embed(every_clip), text.embed(texts)
    del audio, text
    audio8 = load_audio_embedder(int8)
    text8 = load_text_embedder(int8)
    results["int8"] = {
        "audio_min_cosine": min_cosine(ref_audio, audio8.embed(every_clip)),
        "text_min_cosine": min_cosine(ref_text, text8.embed(texts)),
        "required": fp32.precision_min_cosine,
        "audio": bench_audio(audio8, args.repeats),
        "text": bench_text(text8, texts),
    }
    print(
        f"  audio min cosine {results['int8']['audio_min_cosine']:.6f}, "
        f"text min cosine {results['int8']['text_min_cosine']:.6f}",
        flush=True,
    )

    by_clip = {row["clip_s"]: row for row in results["audio_fp32"]}
    results["targets"] = {
        "oneshot_0.5s_files_per_s": {
            "target": TARGETS["oneshot_0.5s_files_per_s"],
            "fp32": by_clip[0.5]["files_per_s"],
        },
        "loop_x_realtime": {
            "target": TARGETS["loop_x_realtime"],
            "fp32": by_clip[30.0]["x_realtime"],
        },
        "text_p99_ms": {"target": TARGETS["text_p99_ms"], "fp32": results["text_fp32"]["p99_ms"]},
    }
    print(json.dumps(results["targets"], indent=2))
    write_results("embedding", results)


if __name__ == "__main__":
    main()
