"""The clamp3 family on ONNX Runtime: MERT, the CLaMP3 audio tower and its text tower run from
graphs exported from the loaded weights, each behind the agreement gate of
:mod:`~timbre.embedding.onnx_backend` (its export spec: the probes, dimensions and loaders).
No torch here: the eager models are imported only to export a graph."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from timbre.audio.windows import prepare_windows
from timbre.embedding.clamp3_inputs import (
    TEXT_SEGMENT_TOKENS,
    TextTokens,
    batches_by_length,
    encode_segmented,
    pad_rows,
    with_zero_ends,
)
from timbre.embedding.family import PROBE_TEXTS, probe_waveforms
from timbre.embedding.files import MERT_WEIGHT_FILES, ModelFiles, first_file
from timbre.embedding.onnx_backend import Graph, Spec, export_cache, ort_threads
from timbre.embedding.runtime import configure_threads
from timbre.settings_models import ModelsSettings

LONG_PROBE_TEXT = "a long description of a drum loop with many words " * 30
"""A text of several 128-token segments: the overlapping last segment and its weight."""

RELOAD_MAX_WINDOW_S = 0.5
"""MERT probe windows up to this long (s) are re-run at every warm load; the rest at export."""

RELOAD_TOWER_ROWS = (1, 4, 40)
"""Audio-tower probes re-run at every warm load; the export gate adds 126 and 300 rows (a
full segment with its zero vectors, three overlapping ones)."""


class OrtMertEncoder:
    """MERT window vectors from the exported graph, as ``MertEncoder.window_vectors``.
    ``streams`` passes run at once (onnxruntime releases the GIL), each on the session's
    threads (``models.mert_streams``); each window is computed alone either way."""

    def __init__(
        self, graph: Graph, *, sample_rate: int, hidden_size: int, num_layers: int, streams: int = 1
    ) -> None:
        self.graph = graph
        self.sample_rate = sample_rate
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.streams = streams

    def window_vectors(self, windows: Sequence[np.ndarray], max_batch: int) -> np.ndarray:
        out = np.empty((len(windows), self.hidden_size), dtype=np.float32)

        def run(chunk: list[int]) -> None:
            batch = np.stack([np.asarray(windows[i], np.float32) for i in chunk])
            out[chunk] = self.graph(windows=batch)

        chunks = list(batches_by_length(windows, max_batch))
        if self.streams > 1 and len(chunks) > 1:
            with ThreadPoolExecutor(min(self.streams, len(chunks))) as pool:
                list(pool.map(run, chunks))  # re-raises a pass's error here
        else:
            for chunk in chunks:
                run(chunk)
        return out


class OrtAudioTower:
    """The CLaMP3 audio tower from its graph (pool and projection inside), as ``AudioTower``."""

    def __init__(self, graph: Graph, *, input_dim: int, segment_rows: int, dim: int) -> None:
        self.graph = graph
        self.input_dim = input_dim
        self.segment_rows = segment_rows
        self.dim = dim

    def encode(self, features: Sequence[np.ndarray], max_batch: int) -> np.ndarray:
        items = with_zero_ends(features, self.input_dim)
        return encode_segmented(items, self.segment_rows, self._run, max_batch)

    def _run(self, segments: list[np.ndarray]) -> np.ndarray:
        rows, mask = pad_rows(segments, 0.0, np.float32)
        return self.graph(inputs_embeds=rows, attention_mask=mask)


class OrtTextTower:
    """The CLaMP3 text tower from its graph, with the reference's tokenisation."""

    def __init__(self, graph: Graph, tokens: TextTokens, *, dim: int) -> None:
        self.graph = graph
        self.tokens = tokens
        self.dim = dim

    @classmethod
    def load(cls, path: Path, dims: dict[str, int], xlmr_dir: Path, threads: int) -> OrtTextTower:
        # onnxruntime builds the session without the GIL: parse the tokenizer (~0.5 s for
        # XLM-R's 250k pieces) meanwhile, on another core.
        with ThreadPoolExecutor(1) as pool:
            tokens = pool.submit(TextTokens.load, xlmr_dir, int(dims["pad_id"]))
            graph = Graph(path, threads, ("input_ids", "attention_mask"))
            return cls(graph, tokens.result(), dim=int(dims["dim"]))

    def encode(self, texts: Sequence[str], max_batch: int) -> np.ndarray:
        items = self.tokens.encode_ids(texts)
        return encode_segmented(items, TEXT_SEGMENT_TOKENS, self._run, max_batch)

    def _run(self, segments: list[np.ndarray]) -> np.ndarray:
        ids, mask = pad_rows(segments, self.tokens.pad_id, np.int64)
        return self.graph(input_ids=ids, attention_mask=mask)


def mert_streams(settings: ModelsSettings, batches: bool) -> int:
    """MERT passes in flight at once (``models.mert_streams``). ``auto``: one per thread when
    calls carry many files (``batches``), else one pass on every thread (a lone pass on one
    thread takes 1.6-1.9x as long)."""
    if settings.mert_streams == "auto":
        return ort_threads(settings) if batches else 1
    return settings.mert_streams


def text_spec(settings: ModelsSettings, files: ModelFiles) -> Spec:
    ckpt, xlmr = files.require("clamp3"), files.require("xlmr")
    batch = settings.tower_batch_segments.cpu
    threads = ort_threads(settings)

    def load_eager() -> Any:
        from timbre.embedding.clamp3_torch import CPU, Clamp3Checkpoint, TextTower

        configure_threads(settings.threads)
        return TextTower.load(Clamp3Checkpoint(ckpt), xlmr, CPU)

    return Spec(
        kind="text",
        name="text tower",
        sources=[ckpt, xlmr / "config.json"],
        load_eager=load_eager,
        dims=lambda t: {"dim": int(t.dim), "pad_id": int(t.tokens.pad_id)},
        load_ort=lambda path, dims: OrtTextTower.load(path, dims, xlmr, threads),
        # A warm load re-runs the short texts; the export gate adds the long one.
        probes=lambda dims, reload: [*PROBE_TEXTS] if reload else [*PROBE_TEXTS, LONG_PROBE_TEXT],
        run=lambda tower, texts: tower.encode(texts, batch),
    )


def audio_tower_spec(settings: ModelsSettings, files: ModelFiles) -> Spec:
    ckpt = files.require("clamp3")
    batch = settings.tower_batch_segments.cpu
    threads = ort_threads(settings)

    def load_eager() -> Any:
        from timbre.embedding.clamp3_torch import CPU, AudioTower, Clamp3Checkpoint

        configure_threads(settings.threads)
        return AudioTower.load(Clamp3Checkpoint(ckpt), CPU)

    def probes(dims: dict[str, int], reload: bool) -> list[np.ndarray]:
        rng = np.random.default_rng(1234)
        rows = RELOAD_TOWER_ROWS if reload else (*RELOAD_TOWER_ROWS, 126, 300)
        return [rng.standard_normal((n, dims["input_dim"])).astype(np.float32) for n in rows]

    return Spec(
        kind="audio_tower",
        name="audio tower",
        sources=[ckpt],
        load_eager=load_eager,
        dims=lambda t: {
            "dim": int(t.dim),
            "input_dim": int(t.input_dim),
            "segment_rows": int(t.segment_rows),
        },
        load_ort=lambda path, dims: OrtAudioTower(
            Graph(path, threads, ("inputs_embeds", "attention_mask")),
            input_dim=dims["input_dim"],
            segment_rows=dims["segment_rows"],
            dim=dims["dim"],
        ),
        probes=probes,
        run=lambda tower, feats: tower.encode(feats, batch),
    )


def mert_spec(settings: ModelsSettings, files: ModelFiles, batches: bool = True) -> Spec:
    mert_dir = files.require("mert")
    weights = first_file(mert_dir, MERT_WEIGHT_FILES)
    batch = settings.mert_batch_windows.cpu
    streams = mert_streams(settings, batches)
    threads = max(1, ort_threads(settings) // streams)

    def load_eager() -> Any:
        from timbre.embedding.clamp3_torch import CPU, MertEncoder

        configure_threads(settings.threads)
        return MertEncoder.load(mert_dir, CPU)

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
        dims=lambda m: {
            "sample_rate": int(m.sample_rate),
            "hidden_size": int(m.hidden_size),
            "num_layers": int(m.num_layers),
        },
        load_ort=lambda path, dims: OrtMertEncoder(
            Graph(path, threads, ("windows",)),
            sample_rate=dims["sample_rate"],
            hidden_size=dims["hidden_size"],
            num_layers=dims["num_layers"],
            streams=streams,
        ),
        probes=probes,
        run=lambda mert, windows: mert.window_vectors(windows, batch),
    )


def cached_dim(settings: ModelsSettings, files: ModelFiles) -> int | None:
    """The embedding dimension recorded by a cached export of these files, if there is one."""
    ckpt, xlmr = files.paths.get("clamp3"), files.paths.get("xlmr")
    candidates = [("audio_tower", [ckpt])] if ckpt else []
    if ckpt and xlmr:
        candidates.append(("text", [ckpt, xlmr / "config.json"]))
    cache = export_cache(settings)
    for kind, sources in candidates:
        manifest = cache.entry(kind, sources).manifest()
        if manifest is not None and "dim" in manifest.get("dims", {}):
            return int(manifest["dims"]["dim"])
    return None
