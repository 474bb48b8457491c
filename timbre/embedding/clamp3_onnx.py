"""The clamp3 family's ONNX graphs: the text tower, the audio tower and MERT.

Each is a :class:`~timbre.embedding.onnx_backend.Spec`: how to load it in PyTorch, export it,
probe it and load the graph. The gate itself is family-neutral (:mod:`onnx_backend`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from timbre.audio.windows import prepare_windows
from timbre.embedding.common import PROBE_TEXTS, probe_waveforms
from timbre.embedding.files import MERT_WEIGHT_FILES, ModelFiles
from timbre.embedding.onnx_backend import Spec, export_cache, ort_threads
from timbre.errors import ModelFilesError
from timbre.settings import ModelsSettings

LONG_PROBE_TEXT = "a long description of a drum loop with many words " * 30
"""A text of several 128-token segments: the overlapping last segment and its weight."""

RELOAD_MAX_WINDOW_S = 0.5
"""MERT probe windows up to this long (s) are re-run at every warm load (the kick and the hat,
~0.1 s at full size); the longer ones only at export."""

RELOAD_TOWER_ROWS = (1, 4, 40)
"""Audio-tower probes re-run at every warm load (short segments, ~0.05 s at full size); the
export gate adds 126 and 300 rows (a full segment, three overlapping ones). (Before graph
format 2 the warm load ran all of them: ~1.5-4 s of every audio-side start.)"""


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


def text_spec(settings: ModelsSettings, files: ModelFiles) -> Spec:
    ckpt, xlmr = files.require("clamp3"), files.require("xlmr")
    batch = settings.tower_batch_segments.cpu
    threads = ort_threads(settings)

    def load_eager() -> Any:
        from timbre.embedding.clamp3_eager import cpu_text_tower

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
        from timbre.embedding.clamp3_eager import cpu_audio_tower

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
    mert_dir = files.require("mert")
    weights = next((mert_dir / n for n in MERT_WEIGHT_FILES if (mert_dir / n).is_file()), None)
    if weights is None:
        raise ModelFilesError(f"{mert_dir} holds none of {', '.join(MERT_WEIGHT_FILES)}")
    batch = settings.mert_batch_windows.cpu
    streams = mert_streams(settings, batches)
    threads = max(1, ort_threads(settings) // streams)

    def load_eager() -> Any:
        from timbre.embedding.clamp3_eager import cpu_mert

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
