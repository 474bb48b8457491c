"""ONNX Runtime as the CPU backend: choose it, find or make each export, gate it, load it.

Family-neutral: each family describes its graphs as :class:`Spec` (for clamp3, see
:mod:`timbre.embedding.clamp3_onnx`). For each model the first start exports the loaded PyTorch
module (:mod:`timbre.embedding.onnx_export`), runs both on fixed probe inputs and adopts the
graph only if it agrees with eager to ``models.onnx_min_cosine`` (the agreement gate of
:mod:`timbre.embedding.runtime`, in float64); otherwise it logs why, records the refusal and
runs eager. Later starts load the cached graph without torch and check it against the eager
outputs the entry recorded, on the cheap half of the probes. An entry that fails that check is
made again. Importing this module does not import torch; only a cold start does.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from timbre.embedding.export_cache import CacheEntry, ExportCache
from timbre.embedding.runtime import adopt_if_faithful, agreement, device_type, usable_cores
from timbre.errors import ConfigError, ModelFilesError
from timbre.settings import ModelsSettings

log = logging.getLogger(__name__)

Runtime = Literal["torch", "onnxruntime"]


def choose_runtime(settings: ModelsSettings, side: Literal["text", "audio"]) -> Runtime:
    """Which runtime serves one side (text, or MERT + audio tower): ``auto`` is onnxruntime
    on a CPU, torch on a GPU.

    Raises:
        ConfigError: ``onnxruntime`` was asked for on CUDA.
    """
    if settings.runtime == "onnxruntime" and settings.device == "cuda":
        raise ConfigError(
            "models.runtime is onnxruntime, which Timbre runs on the CPU only; set "
            "models.device to cpu (or auto), or models.runtime to torch or auto"
        )
    if settings.runtime in ("torch", "onnxruntime"):
        return "torch" if settings.runtime == "torch" else "onnxruntime"
    return "onnxruntime" if device_type(settings.device) == "cpu" else "torch"


def export_cache(settings: ModelsSettings) -> ExportCache:
    if settings.export_dir is None:
        raise ConfigError("models.export_dir is not resolved (load settings through Settings)")
    return ExportCache(Path(settings.export_dir).expanduser())


def ort_threads(settings: ModelsSettings) -> int:
    return settings.threads or usable_cores()


@dataclass
class Spec:
    """How to make, gate and load one model's graph.

    Attributes:
        kind: the cache entry's name prefix.
        name: for the log.
        sources: the files the graph is made from (their sha256 is in the key).
        load_eager: loads the PyTorch module (imports torch).
        export: writes the eager module's graph into a folder, returns the model file.
        dims: what the runtime side needs to know, read from the eager module.
        load_ort: loads a graph file with those dims.
        probes: probe inputs for given dims; ``reload`` = the cheap subset.
        run: runs a module (either kind) on probe inputs -> ``[n, d]`` float32.
    """

    kind: str
    name: str
    sources: list[Path]
    load_eager: Callable[[], Any]
    export: Callable[[Any, Path], Path]
    dims: Callable[[Any], dict[str, int]]
    load_ort: Callable[[Path, dict[str, int]], Any]
    probes: Callable[[dict[str, int], bool], Sequence[Any]]
    run: Callable[[Any, Sequence[Any]], np.ndarray]


def load_component(cache: ExportCache, spec: Spec, min_cosine: float) -> tuple[Any, Runtime]:
    """The model on onnxruntime when its graph passes the gate, else the eager module."""
    entry = cache.entry(spec.kind, spec.sources)
    warm = _warm(entry, spec, min_cosine)
    if warm is not None:
        return warm, "onnxruntime"
    with entry.lock():
        manifest = entry.manifest()
        if manifest is not None and manifest.get("status") == "ok":
            warm = _warm(entry, spec, min_cosine)  # another process made it meanwhile
            if warm is not None:
                return warm, "onnxruntime"
            entry.discard()
        elif manifest is not None:
            log.warning(
                "%s: its ONNX export was refused (%s); running PyTorch. Delete %s to try again",
                spec.name,
                manifest.get("reason"),
                entry.directory,
            )
            return spec.load_eager(), "torch"
        return _export_and_gate(entry, spec, min_cosine)


def _warm(entry: CacheEntry, spec: Spec, min_cosine: float) -> Any | None:
    manifest = entry.manifest()
    if manifest is None or manifest.get("status") != "ok":
        return None
    try:
        dims = {k: int(v) for k, v in manifest["dims"].items()}
        model = spec.load_ort(entry.model_path, dims)
        got = spec.run(model, spec.probes(dims, True))
        measured = agreement(entry.probes()["reload_expected"], got)
    except (ModelFilesError, KeyError, OSError, ValueError) as exc:
        log.warning("%s: cached export %s is unusable (%s)", spec.name, entry.directory, exc)
        return None
    if measured < min_cosine:
        log.warning(
            "%s: cached export %s agrees with its recorded eager outputs only to %.9f",
            spec.name,
            entry.directory,
            measured,
        )
        return None
    log.debug(
        "%s: onnxruntime graph %s (cosine 1 - %.1e)", spec.name, entry.directory, 1 - measured
    )
    return model


_EXPORTING = threading.Lock()
"""torch.export traces through global state: one export at a time per process (the service
loads its text side in the background while an early audio query may load the audio side)."""


def _export_and_gate(entry: CacheEntry, spec: Spec, min_cosine: float) -> tuple[Any, Runtime]:
    with _EXPORTING:
        return _export_and_gate_locked(entry, spec, min_cosine)


def _export_and_gate_locked(
    entry: CacheEntry, spec: Spec, min_cosine: float
) -> tuple[Any, Runtime]:
    eager = spec.load_eager()
    dims = spec.dims(eager)
    staged = entry.staging()
    log.info("%s: exporting to ONNX (once per checkpoint and versions) into %s", spec.name, staged)
    started = time.perf_counter()
    current = {"model": eager}
    try:
        candidate = spec.load_ort(_export_retrying(spec, eager, staged), dims)
        measured = adopt_if_faithful(
            spec.name,
            "onnxruntime",
            probe=lambda: spec.run(current["model"], spec.probes(dims, False)),
            swap_in=lambda: current.update(model=candidate),
            swap_out=lambda: current.update(model=eager),
            min_cosine=min_cosine,
            reference="PyTorch eager",
        )
        reason = f"agreement {measured:.9f} < {min_cosine}" if measured < min_cosine else None
    except Exception as exc:  # an exporter or runtime failure must not stop Timbre: eager runs
        measured, reason = float("nan"), f"export failed: {type(exc).__name__}: {exc}"
        log.warning("%s: %s; running PyTorch", spec.name, reason)
    manifest = {
        "status": "refused" if reason else "ok",
        "reason": reason,
        "dims": dims,
        "agreement_min_cosine": measured,
        "required_min_cosine": min_cosine,
        "export_s": round(time.perf_counter() - started, 1),
        "fusions": _fusions(staged),
    }
    if reason:
        for path in [*staged.glob("model.onnx*"), *staged.glob("raw.onnx*")]:
            path.unlink()  # keep the verdict, not the gigabytes
        reload_expected = np.zeros((0, 0), np.float32)
    else:
        reload_expected = spec.run(eager, spec.probes(dims, True))
    try:
        entry.publish(staged, manifest, {"reload_expected": reload_expected})
    except OSError as exc:  # a read-only cache: use the graph now, export again next start
        log.warning("%s: cannot write the export cache (%s)", spec.name, exc)
    if reason:
        return eager, "torch"
    # The session keeps its (memory-mapped) weights across the folder's rename; the eager
    # module and its share of the checkpoint go with this frame.
    return candidate, "onnxruntime"


def _export_retrying(spec: Spec, eager: Any, staged: Path) -> Path:
    """``spec.export``, once more after a ``SystemError``: that is the interpreter failing, not
    the model (CPython 3.11's AST recursion counter is shared by threads, and torch.export
    parses source while another thread may too: "AST constructor recursion depth mismatch"
    was seen once in a CI run), and a refusal is cached for good."""
    try:
        return spec.export(eager, staged)
    except SystemError as exc:
        log.warning(
            "%s: export failed inside the interpreter (%s); trying once more", spec.name, exc
        )
        return spec.export(eager, staged)


def _fusions(staged: Path) -> dict[str, int] | None:
    try:
        data = json.loads((staged / "fusions.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None  # the export failed before its fusions
    return {str(k): int(v) for k, v in data.items()}
