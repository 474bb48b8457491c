"""Any bench, run on two revisions alternately, with every figure side by side.

    python -m bench.ab --baseline REV [--candidate REV] [--rounds 2] --file store \\
        -- bench.bench_store --sizes 10000

Both revisions are exported (``git archive``) under ``data/bench/ab/`` and the bench module
runs from inside each tree with this virtualenv's Python, A then B, B then A, ... so that a
busy neighbour weighs on both alike. After each run the bench's own results file
(``bench/results/<file>.json`` of that tree) is collected. The report pairs every numeric
figure the two sides share: the median over rounds of each side, and candidate / baseline.
It is written to ``bench/results/ab-<file>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.bench_api_ab import export_tree
from bench.common import machine, write_results


def _figures(data: Any, prefix: str = "") -> dict[str, float]:
    """Every numeric leaf of a JSON document, keyed by its path (``a.b.0.c``)."""
    if isinstance(data, bool):
        return {}
    if isinstance(data, int | float):
        return {prefix: float(data)}
    if isinstance(data, dict):
        items: Any = data.items()
    else:
        items = enumerate(data) if isinstance(data, list) else ()
    out: dict[str, float] = {}
    for key, value in items:
        if key != "machine":
            out.update(_figures(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def run(tree: Path, command: list[str], file: str) -> dict[str, float]:
    subprocess.run(
        [sys.executable, "-m", *command],
        cwd=tree,
        check=True,
        env={**os.environ, "PYTHONPATH": str(tree)},
    )
    return _figures(json.loads((tree / "bench" / "results" / f"{file}.json").read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True)
    parser.add_argument("--candidate", default="HEAD")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--file", required=True, help="the bench's results file name")
    parser.add_argument("command", nargs="+", help="the bench module and its arguments")
    args = parser.parse_args()
    trees = {"baseline": export_tree(args.baseline), "candidate": export_tree(args.candidate)}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for r in range(args.rounds):
        order = list(trees) if r % 2 == 0 else list(reversed(trees))
        for name in order:
            print(f"round {r + 1}: {name}", flush=True)
            runs[name].append(run(trees[name], args.command, args.file))
    shared = sorted(set.intersection(*(set(run) for side in runs.values() for run in side)))
    table = {}
    for key in shared:
        a = statistics.median(run[key] for run in runs["baseline"])
        b = statistics.median(run[key] for run in runs["candidate"])
        table[key] = {"baseline": a, "candidate": b, "ratio": round(b / a, 3) if a else None}
        print(f"{key:70} {a:12.4g} {b:12.4g} {table[key]['ratio']}")
    write_results(
        f"ab-{args.file}",
        {
            "machine": machine(),
            "command": args.command,
            "rounds": args.rounds,
            "baseline": args.baseline,
            "candidate": args.candidate,
            "figures": table,
        },
    )


if __name__ == "__main__":
    main()
