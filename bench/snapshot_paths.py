"""The snapshot's search paths at one size, for bench_store.py.

Measures, one query at a time as the API sends them (p50/p99): loading (checksums verified
or not), the unfiltered scan on the flat path and on the SQ8 path, the snapshot's filtered
scan on both for a selective and a broad filter (the filter's evaluation included), and what
the service does for those filters (:func:`timbre.search.routing.search`: currency check,
snapshot count, then the snapshot or Qdrant), next to the store's own count of the filter.
Prints ratios and the process's resident memory (all of it, and its anonymous part: file
pages of mapped snapshot files are shared page cache the kernel can drop).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from timbre.embedding.info import ModelInfo
from timbre.search.holders import StoreHandle
from timbre.search.routing import RoutingPolicy
from timbre.search.routing import search as routed_search
from timbre.settings import Settings
from timbre.store import SearchFilter, VectorStore
from timbre.store.snapshot import ScanOptions, Snapshot, load_snapshot

Latency = Callable[[Callable[[np.ndarray], Any], np.ndarray], dict[str, float]]


def memory_gb() -> dict[str, float]:
    """Resident memory of this process: all, and anonymous (not backed by a file)."""
    info = psutil.Process().memory_info()
    return {"rss_gb": info.rss / 1e9, "rss_anon_gb": (info.rss - info.shared) / 1e9}


def _show(stats: dict[str, float]) -> str:
    return (
        f"p50 {stats['p50_ms']:.2f} ms, p99 {stats['p99_ms']:.2f} ms"
        f" (cpu {stats['cpu_p50_ms']:.2f} ms)"
    )


def _ratio(a: dict[str, float], b: dict[str, float]) -> float:
    return a["p50_ms"] / b["p50_ms"]


def measure(  # noqa: PLR0917 (one call site, in bench_store.py)
    snapshots: Path,
    info: ModelInfo,
    settings: Settings,
    store: VectorStore,
    queries: np.ndarray,
    filters: dict[str, SearchFilter],
    latencies: Latency,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    threads = settings.snapshot.scan_threads
    loads: dict[str, Any] = {}
    # Every file hashed (the first load of a snapshot), hashed only where changed since it
    # passed (every later load: none here), and not verified at all.
    for key, verify, rehash in (
        ("verified_s", True, True),
        ("verified_recorded_s", True, False),
        ("unverified_s", False, False),
    ):
        start = time.perf_counter()
        load_snapshot(
            snapshots,
            info,
            mmap_min_bytes=settings.snapshot.mmap_min_bytes,
            verify_checksums=verify,
            reverify_unchanged=rehash,
        ).close()
        loads[key] = time.perf_counter() - start

    def load(scan: ScanOptions | None) -> Snapshot:
        return load_snapshot(
            snapshots,
            info,
            mmap_min_bytes=settings.snapshot.mmap_min_bytes,
            verify_checksums=False,
            scan=scan,
        )

    flat = load(None)
    sq8 = load(ScanOptions(quantised_min_vectors=0, threads=threads))
    service = load(ScanOptions(settings.snapshot.quantised_min_vectors, threads))
    loads["mmapped"] = flat.mmapped
    out["load"] = loads
    print(
        f"  load: {loads['verified_s']:.2f} s hashing every file,"
        f" {loads['verified_recorded_s']:.3f} s verified unchanged since,"
        f" {loads['unverified_s']:.3f} s unverified"
        f" (mmap: {flat.mmapped})"
    )

    out["unfiltered"] = {"service_scan": service.scan.kind}
    for name, snapshot in (("flat", flat), ("sq8", sq8)):
        stats = latencies(lambda q, s=snapshot: s.search(q, 10), queries)
        out["unfiltered"][name] = stats
        print(f"  snapshot unfiltered, {name}: {_show(stats)}")
    unfiltered = out["unfiltered"]
    unfiltered["sq8_over_flat_p50"] = _ratio(unfiltered["sq8"], unfiltered["flat"])
    out["unfiltered"]["sq8_second_passes"] = getattr(sq8.scan, "second_passes", 0)

    handle = StoreHandle(lambda: store)
    policy = RoutingPolicy(settings.snapshot.filtered_min_points)
    out["filtered"] = {}
    for label, search_filter in filters.items():
        row: dict[str, Any] = {"count": {}}
        start = time.perf_counter()
        row["matching"] = store.live().count(search_filter)
        row["count"]["qdrant_ms"] = (time.perf_counter() - start) * 1e3
        row["count"]["snapshot"] = latencies(lambda q, f=search_filter: flat.select(f), queries)
        for name, snapshot in (("flat", flat), ("sq8", sq8)):

            def filtered(
                q: np.ndarray, s: Snapshot = snapshot, f: SearchFilter = search_filter
            ) -> Any:
                return s.search(q, 10, 0, s.select(f))

            row[name] = latencies(filtered, queries)
            print(f"  snapshot filtered {label}, {name}: {_show(row[name])}")
        engines: set[str] = set()

        def routed(q: np.ndarray, f: SearchFilter = search_filter, seen: set[str] = engines) -> Any:
            hits, engine, _ = routed_search(
                service, handle, policy, q, top_k=10, offset=0, filter=f
            )
            seen.add(engine)
            return hits

        row["service"] = {**latencies(routed, queries), "engines": sorted(engines)}
        print(f"  service filtered {label} ({', '.join(sorted(engines))}): {_show(row['service'])}")
        out["filtered"][label] = row
    broad = out["filtered"].get("broad")
    if broad is not None:
        out["ratios"] = {
            "broad_service_over_unfiltered_service_p50": _ratio(
                broad["service"], unfiltered[service.scan.kind]
            ),
            "broad_sq8_over_unfiltered_sq8_p50": _ratio(broad["sq8"], unfiltered["sq8"]),
        }
        print("  ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in out["ratios"].items()))
    out["memory"] = memory_gb()
    for snapshot in (flat, sq8, service):
        snapshot.close()
    return out
