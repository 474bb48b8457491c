"""Sample facts at library scale: facets, relabel, near-duplicates and the derived backfill.

    python bench/bench_facts.py [--size 20000] [--dim 768] [--labels 40] [--repeats 5]

Builds a fresh embedded store (Qdrant Edge) of ``size`` random L2-normalised vectors with
realistic payloads (packs, genres in mixed case, instruments, keys, tags, one-shot and loop
durations) and plants near-duplicates: 2% of the points get a copy whose vector is moved by
a small random step (cosine ~0.9995) and whose duration differs by <= 10 ms. Then it measures:

- facets: every facet field at once (exact counts, display spellings), unfiltered and under
  a filter (median of ``repeats``);
- relabel: the whole library scored against ``labels`` random label vectors and every
  point's labels written (first run: all change) — points/s;
- near-duplicates: the full batched search with duration windows — points/s, and how many
  planted pairs were found (recall) and how many groups were reported beyond them;
- backfill: the in-place derivation of the normalised companions for a collection marked as
  written before they existed — points/s.

Writes bench/results/facts.json. The machine is shared: quote medians and one run's ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import write_results
from timbre.embedding.info import ModelInfo
from timbre.labels import Labeller, LabelRules, Vocabulary, relabel
from timbre.labels.labeller import Label
from timbre.search.duplicates import DuplicateRules, find_duplicates
from timbre.settings import load_settings
from timbre.store import Point, SearchFilter, build_payload, open_store
from timbre.store.facets import FACET_FIELDS

GENRES = ("techno", "Techno", "house", "House", "hip hop", "drum and bass", "ambient", "trap")
INSTRUMENTS = ("kick", "snare", "clap", "hat", "bass", "pad", "lead", "vocal", "fx", "perc")
KEYS = ("Am", "A#m", "Bbm", "C", "F#", "Gb", "Dm", "Ebm", "E", "G")
TAGS = ("dark", "punchy", "warm", "bright", "dusty", "wide", "dry", "wet", "analog", "808")
N_PACKS = 200
DUPLICATE_FRACTION = 0.02
RULES = DuplicateRules(
    min_cosine=0.998,
    duration_tolerance_s=0.1,
    duration_tolerance_ratio=0.05,
    neighbours=16,
    batch=256,
)


def _info(dim: int) -> ModelInfo:
    return ModelInfo(
        mert="bench/random@r1", clamp3="bench/random@r1/c.pth", xlmr="bench/x@r1", dim=dim
    )


def _payload(rng: np.random.Generator, i: int, info: ModelInfo, duration_s: float) -> dict:
    loop = duration_s > 2.0
    pack = f"Pack {int(rng.integers(N_PACKS)):03d}"
    descriptive = {
        "pack": pack,
        "genre": str(rng.choice(GENRES)),
        "instrument": str(rng.choice(INSTRUMENTS)),
        "key": str(rng.choice(KEYS)) if rng.random() < 0.4 else None,
        "kind": "loop" if loop else "one_shot",
        "duration_s": round(duration_s, 4),
        "format": str(rng.choice(["wav", "flac", "mp3"])),
        "sample_rate": 44100,
        "channels": 2,
        "tags": sorted({str(t) for t in rng.choice(TAGS, size=int(rng.integers(0, 3)))}),
    }
    sha = hashlib.sha256(f"bench-{i}".encode()).hexdigest()
    return build_payload(
        descriptive, content_sha256=sha, paths=[f"Lib/{pack}/s_{i:07d}.wav"], model=info
    )


def _durations(rng: np.random.Generator, n: int) -> np.ndarray:
    one_shots = np.exp(rng.normal(np.log(0.5), 0.7, n))  # median 0.5 s, most 0.1-2 s
    loops = (
        60.0
        / rng.choice([90.0, 120.0, 124.0, 128.0, 140.0, 174.0], n)
        * 4
        * rng.choice([1, 2, 4, 8], n)
    )
    return np.where(rng.random(n) < 0.3, loops, np.clip(one_shots, 0.03, 2.0))


def build(root: Path, size: int, dim: int, seed: int = 0) -> tuple[Any, set[frozenset[str]]]:
    rng = np.random.default_rng(seed)
    info = _info(dim)
    settings = load_settings(data_dir=root, qdrant={"url": None})
    store = open_store(settings, info)
    n_dup = int(size * DUPLICATE_FRACTION)
    n_base = size - n_dup
    durations = _durations(rng, n_base)
    planted: set[frozenset[str]] = set()
    for start in range(0, n_base, 5000):
        stop = min(n_base, start + 5000)
        vectors = rng.standard_normal((stop - start, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        points = [
            Point.of(v, _payload(rng, start + k, info, float(durations[start + k])))
            for k, v in enumerate(vectors)
        ]
        copies = []
        for k in np.flatnonzero(rng.random(len(points)) < n_dup / n_base):
            original = points[int(k)]
            step = rng.standard_normal(dim).astype(np.float32)
            moved = original.vector + 0.03 * step / np.linalg.norm(step)  # cosine ~0.9995
            moved /= np.linalg.norm(moved)
            twin_duration = float(original.payload["duration_s"]) + float(rng.uniform(-0.01, 0.01))
            twin = Point.of(
                moved, _payload(rng, 10_000_000 + start + int(k), info, max(0.02, twin_duration))
            )
            copies.append(twin)
            planted.add(frozenset({original.id, twin.id}))
        store.live().upsert(points + copies)
    return store, planted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--labels", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="timbre-bench-facts-"))
    try:
        started = time.perf_counter()
        store, planted = build(root, args.size, args.dim)
        points = store.live().count()
        print(
            f"{points} points ({len(planted)} planted pairs) "
            f"in {time.perf_counter() - started:.1f} s"
        )
        out: dict[str, Any] = {"points": points, "dim": args.dim, "planted_pairs": len(planted)}

        def median_s(fn: Any) -> float:
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
            return statistics.median(times)

        out["facets_all_fields_ms"] = round(
            1e3 * median_s(lambda: store.live().facets(FACET_FIELDS, limit=20)), 2
        )
        broad = SearchFilter(kind=("one_shot",), genre=("TECHNO",))
        out["facets_all_fields_filtered_ms"] = round(
            1e3 * median_s(lambda: store.live().facets(FACET_FIELDS, filter=broad, limit=20)), 2
        )
        print(
            f"facets: {out['facets_all_fields_ms']} ms, "
            f"filtered {out['facets_all_fields_filtered_ms']} ms"
        )

        rng = np.random.default_rng(1)
        label_vectors = rng.standard_normal((args.labels, args.dim)).astype(np.float32)
        label_vectors /= np.linalg.norm(label_vectors, axis=1, keepdims=True)
        vocabulary = Vocabulary(
            tuple(
                Label(f"label{i}", "category" if i < args.labels // 2 else "character", ("x",))
                for i in range(args.labels)
            ),
            "bench",
        )
        # Random label vectors score ~0 against random samples: thresholds at 0 give every
        # point a category and tags, so every point's labels are written.
        labeller = Labeller(vocabulary, label_vectors, LabelRules(-1.0, 0.0, -1.0, 5), "bench")
        report = relabel(store, labeller, batch_size=1024)
        out["relabel_s"] = report.seconds
        out["relabel_points_per_s"] = round(report.points / report.seconds, 1)
        out["relabel_changed"] = report.changed
        print(f"relabel: {report.seconds:.1f} s ({out['relabel_points_per_s']} points/s)")

        found = find_duplicates(store.live(), RULES)
        pairs = set()
        for group in found.groups:
            ids = [m.id for m in group.members]
            pairs.update(frozenset({a, b}) for a in ids for b in ids if a < b)
        recovered = len(planted & pairs)
        out["duplicates_s"] = found.seconds
        out["duplicates_points_per_s"] = round(found.points / found.seconds, 1)
        out["duplicates_recall"] = round(recovered / max(1, len(planted)), 4)
        out["duplicates_groups"] = len(found.groups)
        out["duplicates_extra_pairs"] = len(pairs - planted)
        print(
            f"duplicates: {found.seconds:.1f} s ({out['duplicates_points_per_s']} points/s), "
            f"recall {out['duplicates_recall']}, {out['duplicates_extra_pairs']} pairs not planted"
        )

        live = store.live()
        with live._use() as backend:
            backend.write_meta({"derived_version": 1})
        t = time.perf_counter()
        done = live.backfill_derived()
        seconds = time.perf_counter() - t
        out["backfill_s"] = round(seconds, 3)
        out["backfill_points_per_s"] = round(done / seconds, 1)
        print(f"backfill: {seconds:.1f} s ({out['backfill_points_per_s']} points/s)")
        store.close()
        write_results("facts", out)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
