"""How big the house is: lines per package, the ratio of comments to code, and import cycles.

    python -m bench.code_size [--rev REV] [--out bench/results/code_size.json]

Counts the product's Python (timbre/, app/, ingest/) at the working tree, or at a git revision
with ``--rev``. A line is blank, comment (a ``#`` line or part of a docstring) or code. Cycles
are strongly connected groups of product modules in the import graph, counting imports inside
functions but not under ``TYPE_CHECKING`` (the rule tests/cli/test_layering.py enforces).
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import subprocess
import tokenize
from collections import defaultdict
from pathlib import Path

from bench.common import machine
from tests.support.import_graph import cycles, runtime_imports

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("timbre", "app", "ingest")


def _sources(rev: str | None) -> dict[str, str]:
    """Path → text of every product .py file, at ``rev`` or in the working tree."""
    if rev is None:
        return {
            str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
            for pkg in PACKAGES
            for p in sorted((ROOT / pkg).rglob("*.py"))
        }
    listing = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", rev, "--", *PACKAGES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {
        path: subprocess.run(
            ["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        for path in listing
        if path.endswith(".py")
    }


def _line_kinds(text: str) -> dict[str, int]:
    lines = text.splitlines()
    comment: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT and lines[tok.start[0] - 1].strip().startswith("#"):
            comment.add(tok.start[0])
    for node in ast.walk(ast.parse(text)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                comment.update(range(body[0].lineno, (body[0].end_lineno or body[0].lineno) + 1))
    blank = sum(1 for line in lines if not line.strip())
    return {
        "lines": len(lines),
        "blank": blank,
        "comment": len(comment),
        "code": len(lines) - blank - len(comment),
    }


def _module(path: str) -> str:
    parts = path[:-3].split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def measure(rev: str | None) -> dict[str, object]:
    sources = _sources(rev)
    per_package: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for path, text in sources.items():
        package = str(Path(path).parent)
        for key, value in _line_kinds(text).items():
            per_package[package][key] += value
            per_package["total"][key] += value
        per_package[package]["files"] += 1
        per_package["total"]["files"] += 1
    modules = {_module(p) for p in sources}
    graph = {
        _module(p): runtime_imports(t, _module(p), p.endswith("__init__.py"), modules)
        for p, t in sources.items()
    }
    found = cycles(graph)
    table = {k: dict(v) for k, v in sorted(per_package.items())}
    for row in table.values():
        row["comment_ratio"] = round(row["comment"] / max(row["code"], 1), 3)
    return {"rev": rev or "working tree", "packages": table, "cycles": found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", help="a git revision; the working tree if omitted")
    parser.add_argument("--out", type=Path, help="merge the figures into this JSON file")
    args = parser.parse_args()
    result = measure(args.rev)
    print(f"{'package':28} {'files':>5} {'lines':>6} {'code':>6} {'comment':>7} {'ratio':>6}")
    for name, row in result["packages"].items():  # type: ignore[union-attr]
        print(
            f"{name:28} {row['files']:5} {row['lines']:6} {row['code']:6} "
            f"{row['comment']:7} {row['comment_ratio']:6}"
        )
    print(f"import cycles: {len(result['cycles'])}")  # type: ignore[arg-type]
    for group in result["cycles"]:  # type: ignore[union-attr]
        print("  " + " ↔ ".join(group))
    if args.out:
        saved = json.loads(args.out.read_text()) if args.out.exists() else {}
        saved[result["rev"]] = {**result, "machine": machine()}  # type: ignore[index]
        args.out.write_text(json.dumps(saved, indent=2) + "\n")


if __name__ == "__main__":
    main()
