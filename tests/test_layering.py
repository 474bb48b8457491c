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


TORCH_FREE = (
    "timbre/embedding/embedder.py",
    "timbre/embedding/export_cache.py",
    "timbre/embedding/files.py",
    "timbre/embedding/info.py",
    "timbre/embedding/onnx_backend.py",
    "timbre/embedding/ort_runtime.py",
    "timbre/embedding/runtime.py",
    "timbre/embedding/segments.py",
    "timbre/embedding/text_input.py",
    "timbre/search/batcher.py",
    "timbre/search/service.py",
)
"""The onnxruntime path: importing these must not import torch (a warm start never does;
tests/test_onnx_runtime.py runs one). Functions may import it for the PyTorch path."""


def _module_level_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_onnxruntime_path_imports_no_torch_at_module_level() -> None:
    for name in TORCH_FREE:
        imports = _module_level_imports(ROOT / name)
        assert not _top(imports) & {"torch", "transformers", "onnx", "onnxscript"}, name
        for module in imports:  # nor a Timbre module that does
            if module.startswith("timbre.embedding."):
                assert f"{module.replace('.', '/')}.py" in TORCH_FREE, (name, module)
