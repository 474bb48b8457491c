"""ONNX Runtime as the CPU backend: choose it, find or make each export, gate it, load it.

For each model (text tower, audio tower, MERT) the first start exports the loaded PyTorch
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

from timbre.audio.windows import prepare_windows
from timbre.embedding.export_cache import CacheEntry, ExportCache
from timbre.embedding.files import ModelFiles
from timbre.embedding.runtime import adopt_if_faithful, agreement, device_type, usable_cores
from timbre.errors import ConfigError, ModelFilesError
from timbre.settings import ModelsSettings

log = logging.getLogger(__name__)

Runtime = Literal["torch", "onnxruntime"]

LONG_PROBE_TEXT = "a long description of a drum loop with many words " * 30
"""A text of several 128-token segments: the overlapping last segment and its weight."""

RELOAD_MAX_WINDOW_S = 0.5
"""MERT probe windows up to this long (s) are re-run at every warm load (the kick and the hat,
~0.1 s at full size); the longer ones only at export."""

RELOAD_TOWER_ROWS = (1, 4, 40)
"""Audio-tower probes re-run at every warm load (short segments, ~0.05 s at full size); the
export gate adds 126 and 300 rows (a full segment, three overlapping ones). (Before graph
format 2 the warm load ran all of them: ~1.5-4 s of every audio-side start.)"""


def choose_runtime(settings: ModelsSettings, side: Literal["text", "audio"]) -> Runtime:
    """Which runtime serves one side (text, or MERT + audio tower).

    ``auto`` is onnxruntime on a CPU in fp32, torch on a GPU and for a reduced precision (int8,
    bf16 and fp16 are PyTorch features here). Asking for onnxruntime where it cannot serve is
    an error, not a silent fallback.

    Raises:
        ConfigError: ``onnxruntime`` was asked for on CUDA or with a reduced precision.
    """
    precision = settings.text_precision if side == "text" else settings.audio_precision
    if settings.runtime == "torch":
        return "torch"
    if settings.runtime == "onnxruntime":
        if settings.device == "cuda":
            raise ConfigError(
                "models.runtime is onnxruntime, which Timbre runs on the CPU only; set "
                "models.device to cpu (or auto), or models.runtime to torch or auto"
            )
        if precision not in ("auto", "fp32"):
            raise ConfigError(
                f"models.{side}_precision is {precision}, but the onnxruntime path runs fp32 "
                "only; set it to auto or fp32, or models.runtime to torch"
            )
        return "onnxruntime"
    if precision not in ("auto", "fp32"):
        return "torch"
    return "onnxruntime" if device_type(settings.device) == "cpu" else "torch"


def export_cache(settings: ModelsSettings) -> ExportCache:
    if settings.export_dir is None:
        raise ConfigError("models.export_dir is not resolved (load settings through Settings)")
    return ExportCache(Path(settings.export_dir).expanduser())


def ort_threads(settings: ModelsSettings) -> int:
    return settings.threads or usable_cores()


def mert_streams(settings: ModelsSettings, batches: bool) -> int:
    """MERT passes in flight at once (``models.mert_streams``).

    ``auto``: one pass per thread when calls carry many windows (``batches``: a parallel-
    profile job embeds batches of files), else one pass on every thread (the service, where
    an audio query waits for its one upload; a sequential job, one file at a time), since a
    lone pass on one thread takes 1.6-1.9x as long.
    """
    if settings.mert_streams == "auto":
        return ort_threads(settings) if batches else 1
    return settings.mert_streams


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


# -- the three models -------------------------------------------------------------------------


def text_spec(settings: ModelsSettings, files: ModelFiles) -> Spec:
    from timbre.embedding.embedder import PROBE_TEXTS

    ckpt, xlmr = files.require("clamp3"), files.require("xlmr")
    batch = settings.tower_batch_segments.cpu
    threads = ort_threads(settings)

    def load_eager() -> Any:
        from timbre.embedding.eager import cpu_text_tower

        return cpu_text_tower(settings, ckpt, xlmr)

    def export(tower: Any, target: Path) -> Path:
        from timbre.embedding.onnx_export import export_text

        return export_text(tower, target)

    def load_ort(path: Path, dims: dict[str, int]) -> Any:
        from timbre.embedding.ort_runtime import OrtTextTower

        return OrtTextTower.load(path, dims, xlmr, threads)

    return Spec(
        kind="text",
        name="text tower",
        sources=[ckpt, xlmr / "config.json"],
        load_eager=load_eager,
        export=export,
        dims=lambda t: {"dim": int(t.dim), "pad_id": int(t.tokens.pad_id)},
        load_ort=load_ort,
        # A warm load re-runs the short texts (one small batch); the export gate adds the long
        # one (three full segments, seconds of compute at full size).
        probes=lambda dims, reload: [*PROBE_TEXTS] if reload else [*PROBE_TEXTS, LONG_PROBE_TEXT],
        run=lambda tower, texts: tower.encode(texts, batch),
    )


def audio_tower_spec(settings: ModelsSettings, files: ModelFiles) -> Spec:
    ckpt = files.require("clamp3")
    batch = settings.tower_batch_segments.cpu
    threads = ort_threads(settings)

    def load_eager() -> Any:
        from timbre.embedding.eager import cpu_audio_tower

        return cpu_audio_tower(settings, ckpt)

    def export(tower: Any, target: Path) -> Path:
        from timbre.embedding.onnx_export import export_audio_tower

        return export_audio_tower(tower, target)

    def load_ort(path: Path, dims: dict[str, int]) -> Any:
        from timbre.embedding.ort_runtime import OrtAudioTower

        return OrtAudioTower.load(path, dims, threads)

    def probes(dims: dict[str, int], reload: bool) -> list[np.ndarray]:
        # 1 and 4 windows (one short segment), 126 (exactly 128 rows with the zero vectors)
        # and 300 (three segments, the last overlapping). A warm load runs only the short
        # ones: the long two cost ~1.5 s quiet and up to 4 s on a busy machine, every start.
        rng = np.random.default_rng(1234)
        rows = RELOAD_TOWER_ROWS if reload else (*RELOAD_TOWER_ROWS, 126, 300)
        return [rng.standard_normal((n, dims["input_dim"])).astype(np.float32) for n in rows]

    return Spec(
        kind="audio_tower",
        name="audio tower",
        sources=[ckpt],
        load_eager=load_eager,
        export=export,
        dims=lambda t: {
            "dim": int(t.dim),
            "input_dim": int(t.input_dim),
            "segment_rows": int(t.segment_rows),
        },
        load_ort=load_ort,
        probes=probes,
        run=lambda tower, feats: tower.encode(feats, batch),
    )


def mert_spec(settings: ModelsSettings, files: ModelFiles, batches: bool = True) -> Spec:
    from timbre.embedding.embedder import probe_waveforms
    from timbre.embedding.files import MERT_WEIGHT_FILES

    mert_dir = files.require("mert")
    weights = next((mert_dir / n for n in MERT_WEIGHT_FILES if (mert_dir / n).is_file()), None)
    if weights is None:
        raise ModelFilesError(f"{mert_dir} holds none of {', '.join(MERT_WEIGHT_FILES)}")
    batch = settings.mert_batch_windows.cpu
    streams = mert_streams(settings, batches)
    threads = max(1, ort_threads(settings) // streams)

    def load_eager() -> Any:
        from timbre.embedding.eager import cpu_mert

        return cpu_mert(settings, mert_dir)

    def export(mert: Any, target: Path) -> Path:
        from timbre.embedding.onnx_export import export_mert

        return export_mert(mert, target)

    def load_ort(path: Path, dims: dict[str, int]) -> Any:
        from timbre.embedding.ort_runtime import OrtMertEncoder

        return OrtMertEncoder.load(path, dims, threads, streams=streams)

    def probes(dims: dict[str, int], reload: bool) -> list[np.ndarray]:
        sr = dims["sample_rate"]
        windows = [w for wave in probe_waveforms(sr) for w in prepare_windows(wave, sr)]
        if reload:
            windows = [w for w in windows if w.shape[0] <= RELOAD_MAX_WINDOW_S * sr]
        return windows

    return Spec(
        kind="mert",
        name="MERT",
        sources=[weights, mert_dir / "config.json"],
        load_eager=load_eager,
        export=export,
        dims=lambda m: {
            "sample_rate": int(m.sample_rate),
            "hidden_size": int(m.hidden_size),
            "num_layers": int(m.num_layers),
        },
        load_ort=load_ort,
        probes=probes,
        run=lambda mert, windows: mert.window_vectors(windows, batch),
    )


def cached_dim(settings: ModelsSettings, files: ModelFiles) -> int | None:
    """The embedding dimension recorded by a cached export of these files, if there is one."""
    cache = export_cache(settings)
    candidates: list[tuple[str, list[Path]]] = []
    if files.clamp3_checkpoint is not None:
        candidates.append(("audio_tower", [files.clamp3_checkpoint]))
        if files.xlmr_dir is not None:
            candidates.append(("text", [files.clamp3_checkpoint, files.xlmr_dir / "config.json"]))
    for kind, sources in candidates:
        manifest = cache.entry(kind, sources).manifest()
        if manifest is not None and "dim" in manifest.get("dims", {}):
            return int(manifest["dims"]["dim"])
    return None
