"""Store and snapshot speed at library scale: embedded Qdrant Edge and the FAISS snapshot.

    python bench/bench_store.py [--sizes 10000,100000,1000000] [--dim 768] [--queries 200]

For each size, random L2-normalised vectors with realistic payloads (packs, genres,
instruments, keys, BPM, tags, nested paths) are upserted into a fresh embedded store in
chunks (memory stays bounded), then it measures: upsert throughput, reopen time, filtered
search latency on the embedded store for a selective and a broad filter (p50/p99) and its
unfiltered exact search for comparison, snapshot export time and size, then the snapshot's
paths (bench/snapshot_paths.py): load time, unfiltered and filtered scans on the flat and the
SQ8 path, what the service's router does with each filter, ratios and resident memory. Each
size's data is generated and written in chunks of 10k points, so a million (3 GB of float32)
is streamed. Writes bench/results/store.json. The machine is shared: quote medians.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import snapshot_paths
from bench.common import RESULTS, percentile_ms, write_results
from timbre.embedding.info import ModelInfo
from timbre.settings import load_settings
from timbre.store import Point, SearchFilter, build_payload, open_store, snapshots_dir
from timbre.store.snapshot import export_snapshot

CHUNK_POINTS = 10_000
GENRES = ("techno", "house", "hip hop", "drum and bass", "ambient", "trap", "dubstep", "lofi")
INSTRUMENTS = ("kick", "snare", "clap", "hihat", "bass", "pad", "lead", "vocal", "fx", "perc")
KEYS = tuple(f"{n} {m}" for n in ["C", "D", "E", "F", "G", "A", "B"] for m in ("major", "minor"))
TAGS = ("dark", "punchy", "warm", "bright", "dusty", "wide", "dry", "wet", "analog", "808")
CATEGORIES = ("Drums", "Bass", "Synths", "Vocals", "FX")
SUBFOLDERS = ("One Shots", "Loops", "Kicks", "Snares", "Hats", "Textures")
N_PACKS = 200
"""Distinct packs: a large commercial library has a few hundred."""

SELECTIVE = SearchFilter(pack="Pack 007", instrument="kick")
"""~0.05% of points: one pack, one instrument (what a musician browsing a pack asks)."""
BROAD = SearchFilter(kind="one_shot", genre=["techno", "house"])
"""~16% of points: a common genre pair among one-shots."""


def model_info(dim: int) -> ModelInfo:
    return ModelInfo(
        mert="timbre/random-full@bench",
        clamp3="timbre/random-full@bench/clamp3.pth",
        xlmr="timbre/random-full@bench",
        dim=dim,
        random_weights=True,
    )


def unit_vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def payload(rng: np.random.Generator, i: int, info: ModelInfo) -> dict[str, Any]:
    loop = rng.random() < 0.35
    pack = f"Pack {int(rng.integers(N_PACKS)):03d}"
    instrument = str(rng.choice(INSTRUMENTS))
    path = f"Samples/{pack}/{rng.choice(CATEGORIES)}/{rng.choice(SUBFOLDERS)}/{instrument}_{i}.wav"
    descriptive = {
        "pack": pack,
        "genre": str(rng.choice(GENRES)),
        "bpm": round(float(rng.uniform(70, 175)), 1) if loop else None,
        "key": str(rng.choice(KEYS)) if rng.random() < 0.5 else None,
        "instrument": instrument,
        "kind": "loop" if loop else "one_shot",
        "duration_s": round(float(rng.uniform(2, 30) if loop else rng.uniform(0.05, 3)), 4),
        "sample_rate": 44100,
        "channels": 2,
        "format": "wav",
        "tags": sorted({str(t) for t in rng.choice(TAGS, size=int(rng.integers(0, 4)))}),
    }
    sha = hashlib.sha256(i.to_bytes(8, "little")).hexdigest()
    return build_payload(descriptive, content_sha256=sha, paths=[path], model=info)


def chunks(n: int, dim: int, info: ModelInfo, seed: int) -> Iterator[list[Point]]:
    rng = np.random.default_rng(seed)
    for start in range(0, n, CHUNK_POINTS):
        count = min(CHUNK_POINTS, n - start)
        vectors = unit_vectors(rng, count, dim)
        yield [Point.of(vectors[j], payload(rng, start + j, info)) for j in range(count)]


def latencies(fn: Callable[[np.ndarray], Any], queries: np.ndarray) -> dict[str, float]:
    """Wall-clock p50/p99, and the median CPU time of all the process's threads per query
    (the work done, which contention on a shared machine inflates far less than the wall)."""
    fn(queries[0])  # warm-up
    samples, cpu = [], []
    for q in queries:
        start, start_cpu = time.perf_counter(), time.process_time()
        fn(q)
        samples.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {
        "p50_ms": percentile_ms(samples, 50),
        "p99_ms": percentile_ms(samples, 99),
        "cpu_p50_ms": percentile_ms(cpu, 50),
        "queries": len(samples),
    }


def _show(stats: dict[str, float]) -> str:
    return (
        f"p50 {stats['p50_ms']:.2f} ms, p99 {stats['p99_ms']:.2f} ms"
        f" (cpu {stats['cpu_p50_ms']:.2f} ms)"
    )


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def rss_gib() -> float:
    return psutil.Process().memory_info().rss / 2**30


def bench_size(n: int, dim: int, n_queries: int, root: Path) -> dict[str, Any]:
    info = model_info(dim)
    data_dir = root / f"n{n}"
    shutil.rmtree(data_dir, ignore_errors=True)
    settings = load_settings(data_dir=data_dir, qdrant={"url": None})
    out: dict[str, Any] = {"points": n, "dim": dim}
    # Fewer queries where one query scans a million vectors: the medians settle long before.
    queries = unit_vectors(
        np.random.default_rng(99), max(20, n_queries * 10_000 // max(n, 10_000)), dim
    )

    store = open_store(settings, info)
    upsert_s = 0.0
    for points in chunks(n, dim, info, seed=n):
        start = time.perf_counter()
        store.live().upsert(points)
        upsert_s += time.perf_counter() - start
    start = time.perf_counter()
    store.flush()
    flush_s = time.perf_counter() - start
    start = time.perf_counter()
    store.optimize()  # what a command-line ingest job does when it finishes
    optimize_s = time.perf_counter() - start
    out["upsert"] = {
        "points_per_s": n / upsert_s,
        "seconds": upsert_s,
        "flush_s": flush_s,
        "optimize_s": optimize_s,
        "batch": settings.qdrant.upsert_batch,
    }
    print(
        f"  upsert: {n / upsert_s:,.0f} points/s ({upsert_s:.1f} s), flush {flush_s:.2f} s,"
        f" optimize {optimize_s:.1f} s",
        flush=True,
    )
    store.close()
    start = time.perf_counter()
    store = open_store(settings, info)
    out["reopen_s"] = time.perf_counter() - start
    out["embedded_bytes"] = dir_bytes(data_dir / "qdrant-edge")
    print(
        f"  reopen: {out['reopen_s']:.2f} s, embedded store {out['embedded_bytes'] / 2**30:.2f} GiB"
    )

    out["filtered"] = {}
    for label, search_filter in (("selective", SELECTIVE), ("broad", BROAD)):
        matching = store.live().count(search_filter)
        stats = latencies(
            lambda q, f=search_filter: store.live().search(q, top_k=10, filter=f), queries
        )
        out["filtered"][label] = {
            "filter": search_filter.model_dump(exclude_none=True),
            "matching": matching,
            **stats,
        }
        print(f"  embedded filtered {label} ({matching:,} match): {_show(stats)}")
    edge_unfiltered = latencies(
        lambda q: store.live().search(q, top_k=10), queries[: max(10, len(queries) // 4)]
    )
    out["embedded_unfiltered"] = edge_unfiltered
    print(f"  embedded unfiltered exact: p50 {edge_unfiltered['p50_ms']:.2f} ms")

    snapshots = snapshots_dir(data_dir)
    start = time.perf_counter()
    manifest = export_snapshot(store.live(), snapshots, source_mode=store.mode, keep=1)
    out["export_s"] = time.perf_counter() - start
    out["snapshot_bytes"] = sum(f["bytes"] for f in manifest.files.values())
    print(f"  export: {out['export_s']:.1f} s, snapshot {out['snapshot_bytes'] / 2**30:.2f} GiB")

    out["snapshot"] = snapshot_paths.measure(
        snapshots,
        info,
        settings,
        store,
        queries,
        {"selective": SELECTIVE, "broad": BROAD},
        latencies,
    )
    qdrant_broad = out["filtered"]["broad"]["p50_ms"]
    service_broad = out["snapshot"]["filtered"]["broad"]["service"]["p50_ms"]
    out["snapshot"]["ratios"]["qdrant_broad_over_service_broad_p50"] = qdrant_broad / service_broad
    print(f"  broad filter, Qdrant / service path: {qdrant_broad / service_broad:.1f}x")
    store.close()
    out["peak_rss_gib"] = psutil.Process().memory_info().rss / 2**30
    shutil.rmtree(data_dir, ignore_errors=True)
    return out


def _earlier_sizes(dim: int) -> dict[str, Any]:
    """Sizes measured by an earlier run at the same dimension: a run of some sizes (the 1M one
    takes ~20 minutes) updates those and keeps the others, each with its own date."""
    path = RESULTS / "store.json"
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if earlier.get("dim") != dim:
        return {}
    sizes = dict(earlier.get("sizes", {}))
    for entry in sizes.values():
        entry.setdefault("measured_at", earlier.get("measured_at"))
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default="10000,100000,1000000", help="comma-separated point counts"
    )
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument(
        "--queries", type=int, default=200, help="latency queries at 10k points (fewer above)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "data" / "bench" / "store",
        help="scratch space (each size's store and snapshot are deleted after it is measured)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    results: dict[str, Any] = {
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cores": os.cpu_count(),
            "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        },
        "dim": args.dim,
        "selective_filter": SELECTIVE.model_dump(exclude_none=True),
        "broad_filter": BROAD.model_dump(exclude_none=True),
        "sizes": _earlier_sizes(args.dim),
    }
    for n in sizes:
        print(f"{n:,} points x {args.dim} dims", flush=True)
        started = time.perf_counter()
        try:
            results["sizes"][str(n)] = bench_size(n, args.dim, args.queries, args.data_dir)
        except MemoryError as exc:
            results["sizes"][str(n)] = {"points": n, "error": f"out of memory: {exc}"}
            print(f"  out of memory at {n:,} points", flush=True)
        results["sizes"].get(str(n), {})["wall_s"] = time.perf_counter() - started
        results["sizes"][str(n)]["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        write_results("store", results)  # after each size: a long run keeps what it measured


if __name__ == "__main__":
    main()
