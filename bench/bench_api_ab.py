"""Two builds of the service on the same index, request by request: before/after at one size.

    python bench/bench_api_ab.py --baseline main [--data data/bench/api/data-100000]
        [--requests 200] [--startups 3]

``--baseline`` is a git revision; its tree is exported (``git archive``) under
``data/bench/ab/`` and run by this virtualenv's Python from inside that tree (same
dependencies, other code); this checkout is the candidate. The index is the one
``bench/bench_api.py`` builds for the size (its data dir, reused as it is); the baseline
serves a copy of it (an embedded store has one owner). On a shared machine, figures of two
separate runs cannot be compared, so every measurement here alternates: start-ups go A, B, A,
B (one process at a time), then both services run and each request goes to A and then the
same request to B. Reports p50/p99 per case and build, their ratio, start-up to ``/readyz``
and each process's RSS (all, and anonymous) after the run. Writes bench/results/api_ab.json.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_api import BROAD, SELECTIVE, fresh_query, process_memory, start_service
from bench.common import ROOT, full_bundle, machine, percentile_ms, write_results

Case = Callable[[int], tuple[str, dict[str, Any]]]


def export_tree(revision: str) -> Path:
    """The source tree of ``revision``, exported once under ``data/bench/ab/<commit>``."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", revision], capture_output=True, text=True, check=True
    ).stdout.strip()
    target = ROOT / "data" / "bench" / "ab" / commit[:12]
    if not (target / "timbre" / "__init__.py").is_file():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def start(
    source: Path | None, data: Path, bundle: Path
) -> tuple[subprocess.Popen[bytes], str, float]:
    """``timbre serve`` of one build (the tree ``source``; None = this checkout); returns it,
    its URL and its start-up to ready (s)."""
    return start_service(data, bundle, "onnxruntime", cwd=source)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=60)


def cases(ids: list[str]) -> dict[str, Case]:
    return {
        "text_cached": lambda i: ("/v1/search/text", {"query": "warm pad"}),
        "filtered_broad": lambda i: ("/v1/search/text", {"query": "warm pad", "filter": BROAD}),
        "filtered_selective": lambda i: (
            "/v1/search/text",
            {"query": "warm pad", "filter": SELECTIVE},
        ),
        "audio_by_id": lambda i: ("/v1/search/audio", {"id": ids[i % len(ids)]}),
        "text_uncached": lambda i: ("/v1/search/text", {"query": fresh_query(i)}),
    }


def interleaved(clients: dict[str, httpx.Client], make: Case, n: int) -> dict[str, Any]:
    """``n`` requests to each build, alternating; p50/p99 per build (client side)."""
    times: dict[str, list[float]] = {name: [] for name in clients}
    engines: dict[str, set[str]] = {name: set() for name in clients}
    for i in range(-3, n):  # three warm-ups
        path, body = make(10**6 + i if i < 0 else i)
        for name, client in clients.items():
            begun = time.perf_counter()
            response = client.post(path, json=body)
            elapsed = time.perf_counter() - begun
            response.raise_for_status()
            if i >= 0:
                times[name].append(elapsed)
                engines[name].add(response.json()["engine"])
    return {
        name: {
            "p50_ms": percentile_ms(t, 50),
            "p99_ms": percentile_ms(t, 99),
            "engines": sorted(engines[name]),
        }
        for name, t in times.items()
    }


def snapshot_ids(data: Path, count: int) -> list[str]:
    import uuid

    snapshots = data / "snapshots"
    name = (snapshots / "CURRENT").read_text().strip()
    raw = np.load(snapshots / name / "ids.npy", mmap_mode="r")
    step = max(1, len(raw) // count)
    return [str(uuid.UUID(bytes=bytes(raw[r]))) for r in range(0, len(raw), step)][:count]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", required=True, help="a git revision, e.g. main")
    parser.add_argument("--data", type=Path, default=ROOT / "data/bench/api/data-100000")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--startups", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    bundle = full_bundle()
    if not (args.data / "snapshots" / "CURRENT").is_file():
        raise SystemExit(f"{args.data} holds no index: run bench/bench_api.py --sizes N first")
    copy = args.data.with_name(args.data.name + "-baseline")
    if not copy.is_dir():
        print(f"copying {args.data} to {copy} for the baseline...", flush=True)
        shutil.copytree(args.data, copy)
    builds: dict[str, tuple[Path | None, Path]] = {
        "baseline": (export_tree(args.baseline), copy),
        "candidate": (None, args.data),
    }
    startup: dict[str, list[float]] = {name: [] for name in builds}
    for _ in range(args.startups):
        for name, (source, data) in builds.items():
            proc, _, seconds = start(source, data, bundle)
            stop(proc)
            startup[name].append(seconds)
            print(f"  {name:>9} ready after {seconds:.2f} s", flush=True)
    procs = {name: start(source, data, bundle) for name, (source, data) in builds.items()}
    out: dict[str, Any] = {
        "machine": machine(),
        "baseline": args.baseline,
        "data": str(args.data),
        "startup_to_ready_s": {
            name: {"median": float(np.median(t)), "all": t} for name, t in startup.items()
        },
        "cases": {},
    }
    try:
        clients = {
            name: httpx.Client(base_url=url, timeout=120) for name, (_, url, _) in procs.items()
        }
        for name, make in cases(snapshot_ids(args.data, 50)).items():
            row = out["cases"][name] = interleaved(clients, make, args.requests)
            a, b = row["baseline"], row["candidate"]
            row["candidate_over_baseline_p50"] = b["p50_ms"] / a["p50_ms"]
            print(
                f"  {name:>18}: baseline p50 {a['p50_ms']:6.1f} p99 {a['p99_ms']:6.1f} ms"
                f" ({', '.join(a['engines'])}) | candidate p50 {b['p50_ms']:6.1f}"
                f" p99 {b['p99_ms']:6.1f} ms ({', '.join(b['engines'])})"
                f" | ratio p50 {row['candidate_over_baseline_p50']:.2f}",
                flush=True,
            )
        out["memory"] = {name: process_memory(proc.pid) for name, (proc, _, _) in procs.items()}
        for name, mem in out["memory"].items():
            print(
                f"  {name:>9} RSS {mem['rss_gb']:.2f} GB, anonymous {mem['rss_anon_gb']:.2f} GB",
                flush=True,
            )
        for name, t in startup.items():
            print(f"  {name:>9} start-up to ready: median {np.median(t):.2f} s of {t}")
    finally:
        for proc, _, _ in procs.values():
            stop(proc)
    write_results("api_ab", out)


if __name__ == "__main__":
    main()
