"""A real sample library indexed end to end with each model family (``models.family``).

For every family, in a fresh process each (the order alternates with ``--order``), the real
``timbre ingest`` entry point indexes the library into a fresh data dir under
``data/bench/library/<family>``, with the settings a user gets (profile, workers, batch size,
the snapshot at the end). Then the same process opens a search service on that data dir and
times text queries. Per family it reports:

* files indexed, audio-seconds (the job's own count), failures and files passed over;
* wall time of the process (imports, models, job) and of the job alone; files/s and
  audio-seconds/s of the job;
* the job's stage breakdown (``stage_seconds`` of its summary: hashing; ``decode_wait``, the
  time the model loop waited on the decoding worker, where decoding and analysis run; the
  audio model, ``mert`` for its features whatever the family and ``tower`` for the
  projection; upserts; the snapshot) and the models' share of the job's wall time;
* peak memory: VmHWM of the job's process, and the largest decoding worker's peak;
* text query p50 / p99 through the search service, 40 distinct queries one at a time (after
  one warm-up that loads the text model).

The default library is Debian's ``hydrogen-drumkits`` (``apt install hydrogen-drumkits``):
drum kits of mostly one-shots, FLAC, WAV and AIFF.

Run: ``python -m bench.bench_library [--families clamp3,clap] [--size full] [--limit N]
[--order forward|reverse] [--library DIR] [--out PATH]``; ``clap-htsat-tiny`` among the
families runs the clap family on the HTSAT-tiny checkpoint's dimensions. Bundles of random
weights (results depend only on the dimensions) are written on first use under
``data/bench/families/<size>``, shared with ``bench_families``. Writes
bench/results/library.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, child_env, machine, write_results

HYDROGEN = Path("/usr/share/hydrogen/data/drumkits")
WORK = ROOT / "data" / "bench" / "library"
QUERIES = 40

CHILD = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
started = time.perf_counter()
from bench.bench_library import child
print(json.dumps(child(sys.argv[1], sys.argv[2:], started)))
"""


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _run_cli(args: list[str]) -> int:
    """``timbre <args>`` in this process, as the console script runs it; its exit code."""
    from timbre.cli import main

    argv = sys.argv
    sys.argv = ["timbre", *args]
    try:
        main()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    return 0


def _summary(data: Path) -> dict[str, Any]:
    reports = sorted((data / "reports").glob("ingest-*-summary.json"))
    if not reports:
        raise RuntimeError(f"the job wrote no summary under {data / 'reports'}")
    summary: dict[str, Any] = json.loads(reports[-1].read_text())
    return summary


def _search(count: int) -> dict[str, Any]:
    """Text query latency through the search service on this process's data dir."""
    import numpy as np

    from bench.bench_families import _queries
    from timbre.cli.wiring import build_service
    from timbre.settings import load_settings

    service = build_service(load_settings())
    t0 = time.perf_counter()
    service.search_text("warm up kick", top_k=10)  # loads the text model and the store
    first = time.perf_counter() - t0
    latencies, hits = [], 0
    for query in _queries(count):
        t0 = time.perf_counter()
        result = service.search_text(query, top_k=10)
        latencies.append(time.perf_counter() - t0)
        hits += len(result.hits)
    ms = np.asarray(latencies) * 1e3
    return {
        "queries": count,
        "first_query_s": round(first, 2),
        "text_p50_ms": round(float(np.percentile(ms, 50)), 1),
        "text_p99_ms": round(float(np.percentile(ms, 99)), 1),
        "mean_hits": round(hits / count, 1),
    }


def child(family: str, paths: list[str], started: float) -> dict[str, Any]:
    """One family: the ingest job over ``paths``, then text queries; run in a fresh process
    whose environment names the family, bundle and data dir."""
    import resource

    from timbre.settings import load_settings

    data = load_settings().data_dir
    code = _run_cli(["ingest", *paths])
    process_wall = time.perf_counter() - started
    job_peak = _status_mb("VmHWM")  # before the search loads anything
    # The decoding workers are spawned and joined by the job: the largest one's peak (KiB).
    worker_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    summary = _summary(data)
    counts, stages = summary["counts"], summary["stage_seconds"]
    job_wall = float(summary["wall_s"])
    return {
        "family": family,
        "exit_code": code,
        "files": counts["indexed"],
        "discovered": counts["discovered"],
        "audio_s": counts["audio_s"],
        "failures": summary["failures"]["count"],
        "failures_by_type": summary["failures"].get("by_type", {}),
        "skipped": summary["skipped"]["count"],
        "process_wall_s": round(process_wall, 2),
        # Process start to the job's first stage: imports, label vectors, model load, store.
        "startup_s": round(process_wall - job_wall, 2),
        "job_wall_s": round(job_wall, 2),
        "files_per_s": summary["throughput"]["files_per_s"],
        "audio_s_per_s": summary["throughput"]["audio_s_per_s"],
        "stage_seconds": stages,
        "model_share": round((stages.get("mert", 0.0) + stages.get("tower", 0.0)) / job_wall, 3)
        if job_wall
        else None,
        "job_peak_mb": round(job_peak),
        "worker_peak_mb": round(worker_peak),
        "settings": _job_settings(),
        **_search(QUERIES),
    }


def _job_settings() -> dict[str, Any]:
    """How a job runs with a user's settings: profile, decoding workers, batch size."""
    from ingest.job import options_from_settings
    from timbre.settings import load_settings

    settings = load_settings()
    options = options_from_settings(settings, ())
    return {
        "profile": options.profile,
        "workers": options.workers,
        "batch_files": options.batch_files,
        "runtime": settings.models.runtime,
    }


def library_files(library: Path, limit: int | None) -> list[Path]:
    """The files the job would find, in its own order; the first ``limit`` of them."""
    from ingest.discover import discover

    found = []
    for item in discover([library]):
        found.append(item.path)
        if limit is not None and len(found) >= limit:
            break
    return found


def run_family(entry: str, bundle: Path, paths: list[str]) -> dict[str, Any]:
    """One family (or the HTSAT-tiny variant, ``entry``) in a fresh process and data dir."""
    from bench.bench_families import family_of

    family = family_of(entry)
    data = WORK / entry
    shutil.rmtree(data, ignore_errors=True)
    env = child_env(
        data, bundle, TIMBRE_MODELS__FAMILY=family, TIMBRE_INGEST__PROGRESS_INTERVAL_S="60"
    )
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, entry, *paths],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"{entry}: the bench process failed (exit {done.returncode})")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


COLUMNS = (
    ("family", "family", "{}"),
    ("files", "files", "{}"),
    ("audio_s", "audio-s", "{:.0f}"),
    ("failures", "failed", "{}"),
    ("process_wall_s", "wall s", "{:.1f}"),
    ("job_wall_s", "job s", "{:.1f}"),
    ("files_per_s", "files/s", "{:.2f}"),
    ("audio_s_per_s", "audio-s/s", "{:.2f}"),
    ("model_share", "models", "{:.0%}"),
    ("job_peak_mb", "peak MB", "{}"),
    ("worker_peak_mb", "worker MB", "{}"),
    ("text_p50_ms", "text p50", "{:.1f}"),
    ("text_p99_ms", "text p99", "{:.1f}"),
)


def table(rows: list[dict[str, Any]]) -> str:
    head = [title for _, title, _ in COLUMNS]
    body = [
        [fmt.format(r[key]) if r.get(key) is not None else "-" for key, _, fmt in COLUMNS]
        for r in rows
    ]
    widths = [max(len(c) for c in column) for column in zip(head, *body, strict=True)]
    lines = [
        "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in [head, *body]
    ]
    for r in rows:
        stages = ", ".join(f"{k} {v:.1f}" for k, v in r["stage_seconds"].items())
        lines.append(f"{r['family']} stages (s): {stages}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default="clamp3,clap")
    parser.add_argument("--size", choices=("tiny", "full"), default="full")
    parser.add_argument("--library", type=Path, default=HYDROGEN, help=f"({HYDROGEN})")
    parser.add_argument("--limit", type=int, help="index only the first N files (smoke runs)")
    parser.add_argument(
        "--order",
        choices=("forward", "reverse"),
        default="forward",
        help="run the families as listed, or the other way round (alternate between runs)",
    )
    parser.add_argument(
        "--bundle",
        type=Path,
        default=Path(os.environ.get("TIMBRE_BENCH_BUNDLE", ROOT / "data" / "bench" / "families")),
        help="folder of the <size> bundles (one folder holds both families)",
    )
    parser.add_argument("--out", type=Path, help="results file (bench/results/library.json)")
    args = parser.parse_args()
    if not args.library.is_dir():
        parser.error(
            f"no library at {args.library}: install Debian's hydrogen-drumkits "
            "(apt install hydrogen-drumkits) or pass --library DIR"
        )
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    from bench.bench_families import HTSAT_TINY, bundle_of, ensure_bundle
    from timbre.embedding.files import FAMILY_PARTS

    families = args.families.split(",")
    known = (*FAMILY_PARTS, HTSAT_TINY)
    unknown = [f for f in families if f not in known]
    if unknown:
        parser.error(f"unknown families {unknown}: choose from {', '.join(known)}")
    if args.order == "reverse":
        families = families[::-1]
    bundles = {f: bundle_of(f, args.bundle, args.size) for f in families}
    for family in families:
        ensure_bundle(bundles[family], family, args.size)
    # A limited run names its files; a whole one hands the job the folder, as a user would.
    if args.limit is None:
        paths = [str(args.library)]
        print(f"library {args.library}", flush=True)
    else:
        files = library_files(args.library, args.limit)
        paths = [str(p) for p in files]
        print(f"library {args.library}: the first {len(files)} files", flush=True)
    rows = []
    for family in families:
        started = time.perf_counter()
        rows.append(run_family(family, bundles[family], paths))
        print(f"{family}: done in {time.perf_counter() - started:.1f} s", flush=True)
    print(table(rows))
    results = {
        "machine": machine(),
        "size": args.size,
        "library": str(args.library),
        "limit": args.limit,
        "order": families,
        "families": {r["family"]: r for r in rows},
    }
    if args.out is None:
        write_results("library", results)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        args.out.write_text(json.dumps({"measured_at": stamp, **results}, indent=2) + "\n")
        print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
