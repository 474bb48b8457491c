"""Embedding speed, memory and agreement on a full-size random bundle, on both runtimes.

    python bench/bench_embedding.py [--bundle DIR] [--repeats 3] [--queries 200]
        [--runtimes onnxruntime,torch] [--no-legacy] [--results NAME]

For each runtime (ONNX Runtime, the CPU default, and PyTorch eager), measured interleaved in one run
so both see the same machine: MERT and CLaMP3-tower time per audio-second and per file for one-shots
and loops (0.25 s ... 30 s), files/s and times real time; MERT's achieved FLOP rate on 5 s windows
and 0.5 s clips as a share of the sgemm rate measured in the same run; text-query encode latency
(p50/p99, one query at a time as the API does) for 4- and 11-token queries and a mixed set; 8
concurrent uncached queries through the service's micro-batcher against one at a time; peak memory
of the ingest model set (MERT + audio tower) and of the API model set (text tower, then the audio
side), each in a fresh process; and the agreement of the two runtimes on every benchmark clip and
query. Beside the default ONNX Runtime graphs it
measures, interleaved, the previous unfused graph format (``ort-unfused``, when the export cache
still holds it) and the text tower on one intra-op thread (``ort-1thread``), and MERT one pass at a
time on every thread as the service runs it (``ort-1stream``; a job runs one pass per thread); it
breaks a warm load down per graph (key, session, probe check; wall and CPU seconds) in fresh
processes. Random weights cost exactly the compute of real ones. The ONNX exports are made on the
first run (minutes) into the bench's export cache and reused. MERT's share of sgemm and its per-op
profile (with the share that profile bounds) are in bench/mert_share.py. Writes
bench/results/embedding.json (``--results NAME``: bench/results/NAME.json).
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

from bench.common import (
    add_results_argument,
    bench_models,
    full_bundle,
    machine,
    median,
    write_results,
)
from bench.mert_share import bench_sgemm_share, clips, profile_in_fresh_process
from bench.text_latency import bench_concurrent_text, bench_text, bench_text_lengths, queries

CLIP_SECONDS = (0.25, 0.5, 1.0, 2.0, 8.0, 30.0)
TARGETS = {
    "oneshot_0.5s_files_per_s": 12.0,
    "loop_x_realtime": 25.0,
    "text_11_tokens_p99_ms": 40.0,
    "mert_5s_window_sgemm_share": 0.85,
    "mert_0.5s_clip_sgemm_share": 0.75,
}
"""Issue 15's targets (the earlier 20 files/s and 15 ms were beyond this CPU's roofline)."""


def bench_audio(embedders: dict[str, Any], repeats: int) -> dict[str, list[dict[str, Any]]]:
    """Per clip length, each runtime in turn (interleaved: both see the same machine)."""
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in embedders}
    for seconds in CLIP_SECONDS:
        count = max(4, min(32, round(32 / seconds)))
        batch = clips(seconds, count, seed=int(seconds * 100))
        mert_t: dict[str, list[float]] = {name: [] for name in embedders}
        tower_t: dict[str, list[float]] = {name: [] for name in embedders}
        for embedder in embedders.values():  # warm-up
            embedder.embed_features(embedder.features(batch))
        for _ in range(repeats):
            for name, embedder in embedders.items():
                start = time.perf_counter()
                feats = embedder.features(batch)
                mert_t[name].append(time.perf_counter() - start)
                start = time.perf_counter()
                embedder.embed_features(feats)
                tower_t[name].append(time.perf_counter() - start)
        for name in embedders:
            mert_s, tower_s = median(mert_t[name]), median(tower_t[name])
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
            rows[name].append(row)
            print(
                f"  {name:>11} {seconds:>5.2f} s x{count:>2}: MERT {row['mert_ms_per_file']:8.1f}"
                f" ms/file, tower {row['tower_ms_per_file']:6.1f} ms/file ->"
                f" {row['files_per_s']:6.2f} files/s, {row['x_realtime']:5.2f}x real time",
                flush=True,
            )
    return rows


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float((a * b).sum(axis=1).min())  # both L2-normalised


PEAK_SCRIPT = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
started = time.perf_counter()
import numpy as np
from timbre.settings import load_settings
from timbre.embedding.embedder import load_audio_embedder, load_text_embedder

def mb(field):  # VmHWM (peak) and VmRSS start afresh at exec, unlike ru_maxrss
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

models = load_settings(
    models={"bundle": sys.argv[1], "export_dir": sys.argv[3], "runtime": sys.argv[4]}
).models
out = {}
if sys.argv[2] == "api":
    text = load_text_embedder(models); text.embed(["warm pad"])
    out["text_ready_s"] = time.perf_counter() - started
    for i in range(60):
        text.embed([f"warm pad number {i}"])
    out["text_only_mb"], out["text_only_peak_mb"] = mb("VmRSS"), mb("VmHWM")
    out["text_only_anon_mb"], out["text_only_file_mb"] = mb("RssAnon"), mb("RssFile")
audio = load_audio_embedder(models)
audio.embed([np.zeros(24000 * 8, np.float32) + 0.01])
out["peak_mb"], out["rss_mb"] = mb("VmHWM"), mb("VmRSS")
# private heap vs file-backed pages (the mmapped weights, shared and reclaimable)
out["rss_anon_mb"], out["rss_file_mb"] = mb("RssAnon"), mb("RssFile")
out["torch_imported"] = "torch" in sys.modules
print(json.dumps(out))
"""


LOAD_SCRIPT = """
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np
from timbre.settings import load_settings
from timbre.embedding import clamp3_onnx as onnx
from timbre.embedding.files import resolve_model_files

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

models = load_settings(
    models={"bundle": sys.argv[1], "export_dir": sys.argv[2], "runtime": "onnxruntime"}
).models
files = resolve_model_files(models)
cache = onnx.export_cache(models)
out = {}
legacy = sys.argv[3] == "legacy"
for make in (onnx.text_spec, onnx.mert_spec, onnx.audio_tower_spec):
    spec = make(models, files)
    t0, c0 = time.perf_counter(), cpu()
    entry = cache.entry(spec.kind, spec.sources)
    manifest, path = entry.manifest(), entry.model_path
    if legacy:  # graph format 1, as main loads it: unfused, the tower checked on every probe
        for folder in sorted(entry.directory.parent.glob(spec.kind + "-*")):
            try:
                manifest = json.loads((folder / "manifest.json").read_text())
            except (OSError, ValueError):
                continue
            if manifest.get("status") == "ok" and manifest["key"]["graph_format"] == "1":
                path = folder / "model.onnx"
                break
    dims = {k: int(v) for k, v in manifest["dims"].items()}
    probes = spec.probes(dims, True)
    if legacy and spec.kind == "audio_tower":
        rng = np.random.default_rng(1234)
        probes = [rng.standard_normal((n, dims["input_dim"])).astype(np.float32)
                  for n in (1, 4, 126, 300)]
    t1, c1 = time.perf_counter(), cpu()
    model = spec.load_ort(path, dims)
    t2, c2 = time.perf_counter(), cpu()
    spec.run(model, probes)
    t3, c3 = time.perf_counter(), cpu()
    out[spec.kind] = {
        "key_s": t1 - t0, "session_s": t2 - t1, "check_s": t3 - t2,
        "session_cpu_s": c2 - c1, "check_cpu_s": c3 - c2,
        "graph_format": manifest["key"]["graph_format"],
    }
print(json.dumps(out))
"""
"""Where a warm load's time goes, per graph, in a fresh process: the cache key (hashes are
memoised), the onnxruntime session (graph optimisation, weight prepacking), the probe check.
CPU seconds beside wall seconds: on a shared machine the CPU figure is the steadier one."""


def load_breakdown(bundle: Path, repeats: int, legacy: bool) -> dict[str, Any]:
    """Medians over ``repeats`` fresh processes, the current graphs and (``legacy``) the
    previous format's alternating with them."""
    from bench.common import EXPORT_DIR

    modes = ("current", "legacy") if legacy else ("current",)
    samples: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    for _ in range(repeats):
        for mode in modes:
            done = subprocess.run(
                [sys.executable, "-c", LOAD_SCRIPT, str(bundle), str(EXPORT_DIR), mode],
                capture_output=True,
                text=True,
                check=True,
            )
            samples[mode].append(json.loads(done.stdout.strip().splitlines()[-1]))
    out: dict[str, Any] = {}
    for mode, runs in samples.items():
        for kind, first in runs[0].items():
            row = {"graph_format": first["graph_format"]}
            for field in ("key_s", "session_s", "check_s", "session_cpu_s", "check_cpu_s"):
                row[field] = median([r[kind][field] for r in runs])
            out.setdefault(mode, {})[kind] = row
            print(f"  {mode:>7} {kind:>11}: {row}", flush=True)
    return out


def legacy_embedders(bundle: Path, models: Any) -> tuple[Any, Any] | None:
    """ONNX Runtime embedders on the previous graph format's cached entries (unfused graphs,
    from before :func:`timbre.embedding.onnx_export.fuse_graph`), if the bench's cache still
    holds them: the before/after comparison in one run. None when there are none."""
    from bench.common import EXPORT_DIR
    from timbre.embedding import clamp3_onnx as onnx
    from timbre.embedding.clamp3 import AudioEmbedder
    from timbre.embedding.family import TextEmbedder
    from timbre.embedding.files import resolve_model_files
    from timbre.embedding.info import ModelInfo

    files = resolve_model_files(models)
    loaded: dict[str, Any] = {}
    for make in (onnx.text_spec, onnx.mert_spec, onnx.audio_tower_spec):
        spec = make(models, files)
        for folder in sorted(EXPORT_DIR.glob(f"{spec.kind}-*")):
            try:
                manifest = json.loads((folder / "manifest.json").read_text())
            except (OSError, ValueError):
                continue
            if manifest.get("status") == "ok" and manifest["key"].get("graph_format") == "1":
                dims = {k: int(v) for k, v in manifest["dims"].items()}
                loaded[spec.kind] = spec.load_ort(folder / "model.onnx", dims)
                break
    if set(loaded) != {"text", "mert", "audio_tower"}:
        return None
    info = ModelInfo.from_files(files, models.clamp3.filename, loaded["text"].dim)
    audio = AudioEmbedder(
        loaded["mert"],
        loaded["audio_tower"],
        info,
        models.mert_batch_windows.cpu,
        models.tower_batch_segments.cpu,
        runtime="onnxruntime",
    )
    text = TextEmbedder(loaded["text"], info, models.tower_batch_segments.cpu)
    return audio, text


def peak_memory(bundle: Path, model_set: str, runtime: str) -> dict[str, float]:
    from bench.common import EXPORT_DIR

    done = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(bundle), model_set, str(EXPORT_DIR), runtime],
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
    parser.add_argument("--runtimes", default="onnxruntime,torch")
    add_results_argument(parser, "embedding")
    parser.add_argument(
        "--no-legacy",
        action="store_true",
        help="skip the previous graph format's cached exports even if the cache holds them",
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    bundle = full_bundle(args.bundle)
    runtimes = args.runtimes.split(",")

    from timbre.embedding.clamp3_onnx import OrtMertEncoder
    from timbre.embedding.embedder import load_audio_embedder, load_text_embedder
    from timbre.embedding.onnx_backend import ort_threads
    from timbre.settings import load_settings

    models = {rt: load_settings(models=bench_models(bundle, runtime=rt)).models for rt in runtimes}
    fp32 = load_settings(models=bench_models(bundle, runtime="torch")).models
    results: dict[str, Any] = {
        "machine": machine(),
        "bundle": "random weights, official dimensions",
        "runtimes": runtimes,
    }

    # Loading once first makes the exports (minutes, once), so the timed loads below and the
    # memory processes measure warm starts, as a service or a job sees them.
    audio = {rt: load_audio_embedder(models[rt]) for rt in runtimes}
    text = {rt: load_text_embedder(models[rt]) for rt in runtimes}
    for rt in runtimes:
        assert audio[rt].runtime == text[rt].runtime == rt, (rt, audio[rt].runtime)
    results["load_s"] = {}
    for rt in runtimes:
        start = time.perf_counter()
        audio[rt] = load_audio_embedder(models[rt])
        audio_s = time.perf_counter() - start
        start = time.perf_counter()
        text[rt] = load_text_embedder(models[rt])
        results["load_s"][rt] = {"audio": audio_s, "text": time.perf_counter() - start}
    print(f"load (warm): {results['load_s']}", flush=True)

    # Variants measured beside the default, interleaved: the previous (unfused) graph format
    # when the cache still holds it, and the text tower on one intra-op thread.
    extra_audio: dict[str, Any] = {}
    extra_text: dict[str, Any] = {}
    legacy = None
    if "onnxruntime" in runtimes:
        print("load breakdown (fresh processes, warm exports):", flush=True)
        legacy = None if args.no_legacy else legacy_embedders(bundle, models["onnxruntime"])
        results["load_breakdown"] = load_breakdown(bundle, args.repeats, legacy is not None)
        if legacy is not None:
            extra_audio["ort-unfused"], extra_text["ort-unfused"] = legacy
        one_thread = models["onnxruntime"].model_copy(update={"threads": 1})
        extra_text["ort-1thread"] = load_text_embedder(one_thread)
        # The service's MERT: one pass at a time on every thread (a job runs one per thread).
        one_stream = models["onnxruntime"].model_copy(update={"mert_streams": 1})
        extra_audio["ort-1stream"] = load_audio_embedder(one_stream)

    print("memory (separate processes, warm exports):", flush=True)
    results["memory_mb"] = {
        rt: {"ingest": peak_memory(bundle, "ingest", rt), "api": peak_memory(bundle, "api", rt)}
        for rt in runtimes
    }
    print(f"  {results['memory_mb']}", flush=True)

    torch_audio = audio.get("torch") or load_audio_embedder(fp32)
    print("MERT against sgemm:", flush=True)
    results["sgemm_share"] = bench_sgemm_share({**audio, **extra_audio}, torch_audio, args.repeats)
    if "onnxruntime" in runtimes:
        print("MERT's time by op (ONNX Runtime's node profile):", flush=True)
        share = results["sgemm_share"]
        ort_mert = audio["onnxruntime"].mert
        assert isinstance(ort_mert, OrtMertEncoder), ort_mert
        results["mert_op_profile"] = profile_in_fresh_process(
            ort_mert.graph.path,
            ort_threads(models["onnxruntime"]),
            1e9 * share["sgemm_gflops"],
            share["mert_gflop"],
        )
    print("audio:", flush=True)
    results["audio"] = bench_audio({**audio, **extra_audio}, args.repeats)

    print("text, standalone:", flush=True)
    results["text_by_length"] = bench_text_lengths({**text, **extra_text}, args.queries)
    texts = queries(args.queries)
    results["text_mixed"] = {rt: bench_text(text[rt], texts) for rt in runtimes}
    print(f"  mixed queries: {results['text_mixed']}", flush=True)
    print("text, 8 concurrent clients (service path):", flush=True)
    results["text_concurrent"] = bench_concurrent_text(text[runtimes[0]], 8, args.repeats * 4)

    every_clip = [c for s in CLIP_SECONDS for c in clips(s, 4, seed=int(s * 100))]
    ref_audio, ref_text = torch_audio.embed(every_clip), load_text_embedder(fp32).embed(texts)
    results["agreement_with_torch"] = {
        rt: {
            "audio_min_cosine": min_cosine(ref_audio, audio[rt].embed(every_clip)),
            "text_min_cosine": min_cosine(ref_text, text[rt].embed(texts)),
        }
        for rt in runtimes
    }
    print(f"agreement with PyTorch: {results['agreement_with_torch']}", flush=True)

    results["targets"] = targets(results, [*runtimes, *extra_text, *extra_audio])
    print(json.dumps(results["targets"], indent=2))
    write_results(args.results, results)


def targets(results: dict[str, Any], runtimes: list[str]) -> dict[str, Any]:
    by_clip = {n: {row["clip_s"]: row for row in rows} for n, rows in results["audio"].items()}
    share = results["sgemm_share"]
    out: dict[str, Any] = {}
    for key, measured in (
        ("oneshot_0.5s_files_per_s", lambda rt: by_clip[rt][0.5]["files_per_s"]),
        ("loop_x_realtime", lambda rt: by_clip[rt][30.0]["x_realtime"]),
        ("text_11_tokens_p99_ms", lambda rt: results["text_by_length"][rt]["11_tokens"]["p99_ms"]),
        ("mert_5s_window_sgemm_share", lambda rt: share[rt]["5s_window"]["sgemm_share"]),
        ("mert_0.5s_clip_sgemm_share", lambda rt: share[rt]["0.5s_clip"]["sgemm_share"]),
    ):
        out[key] = {"target": TARGETS[key]}
        for rt in runtimes:
            try:
                out[key][rt] = measured(rt)
            except KeyError:  # a variant measured on one side only (text threads)
                continue
    return out


if __name__ == "__main__":
    main()
