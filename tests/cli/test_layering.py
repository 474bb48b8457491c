"""The dependency rules, checked on the source: ``timbre`` imports neither ``app`` nor ``ingest``,
``app`` and ``ingest`` never import each other, and no product module imports itself back."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.import_graph import cycles, runtime_imports

ROOT = Path(__file__).resolve().parents[2]


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
    "timbre/embedding/clamp3.py",
    "timbre/embedding/clamp3_inputs.py",
    "timbre/embedding/clamp3_onnx.py",
    "timbre/embedding/clap.py",
    "timbre/embedding/clap_inputs.py",
    "timbre/embedding/embedder.py",
    "timbre/embedding/family.py",
    "timbre/embedding/files.py",
    "timbre/embedding/hub.py",
    "timbre/embedding/info.py",
    "timbre/embedding/onnx_backend.py",
    "timbre/embedding/runtime.py",
    "timbre/search/batcher.py",
    "timbre/search/service.py",
)
"""The onnxruntime path: importing these must not import torch (a warm start never does;
tests/embedding/test_onnx_runtime.py runs one). Functions may import it for the PyTorch path."""


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


PRODUCT_PACKAGES = ("timbre", "app", "ingest")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_cycles_in_the_product_packages() -> None:
    paths = {_module_name(p): p for pkg in PRODUCT_PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    known = set(paths)
    graph = {
        name: runtime_imports(
            path.read_text(encoding="utf-8"), name, path.name == "__init__.py", known
        )
        for name, path in paths.items()
    }
    assert cycles(graph) == []


def test_the_cycle_check_sees_a_deferred_import_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
