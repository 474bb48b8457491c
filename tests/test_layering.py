"""The dependency rules of DESIGN.md, checked on the source: the flow stays one way."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _top(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


def test_library_imports_neither_app_nor_ingest() -> None:
    for path in (ROOT / "timbre").rglob("*.py"):
        if path.parent.name == "cli" and path.parent.parent.name == "timbre":
            continue  # the composition root may wire all three
        assert not _top(_imports(path)) & {"app", "ingest"}, path


def test_app_and_ingest_never_import_each_other() -> None:
    for package, other in (("app", "ingest"), ("ingest", "app")):
        for path in (ROOT / package).rglob("*.py"):
            assert other not in _top(_imports(path)), path


def test_audio_never_imports_torch() -> None:
    for path in (ROOT / "timbre" / "audio").rglob("*.py"):
        assert not _top(_imports(path)) & {"torch", "torchaudio", "transformers"}, path


def test_store_stays_free_of_the_model_stack() -> None:
    for path in (ROOT / "timbre" / "store").rglob("*.py"):
        assert not _top(_imports(path)) & {"torch", "transformers"}, path
