"""The clamp3 family: MERT-v1-95M window features, then the CLaMP3 (SAAS) audio and text
towers, reproducing the reference to the letter (docs/model-spec.md).

The family, its audio path and its gated ONNX Runtime graphs, without torch: a warm start runs
on onnxruntime, numpy and ``tokenizers`` alone (PyTorch models: :mod:`clamp3_torch`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from timbre.audio.resample import Resampler
from timbre.audio.windows import PIPELINE_VERSION, prepare_windows
from timbre.embedding import onnx_backend as onnx
from timbre.embedding.clamp3_inputs import (
    TEXT_SEGMENT_TOKENS,
    TextTokens,
    batches_by_length,
    encode_segmented,
    pad_rows,
    with_zero_ends,
)
from timbre.embedding.family import (
    PROBE_TEXTS,
    Side,
    Size,
    TextEmbedder,
    l2_normalize,
    probe_waveforms,
    split_rows,
)
from timbre.embedding.files import ALL_PARTS, MERT_WEIGHT_FILES, ModelFiles, Part, first_file
from timbre.embedding.info import ModelInfo
from timbre.embedding.onnx_backend import Graph, Spec, export_cache, ort_threads
from timbre.embedding.runtime import configure_threads, release_memory, select_device
from timbre.errors import ModelFilesError
from timbre.settings import ModelsSettings


class WindowEncoder(Protocol):
    """MERT on either runtime."""

    sample_rate: int
    hidden_size: int

    def window_vectors(self, windows: Sequence[np.ndarray], max_batch: int) -> np.ndarray: ...


class FeatureEncoder(Protocol):
    """The CLaMP3 audio tower on either runtime."""

    dim: int
    input_dim: int

    def encode(self, features: Sequence[np.ndarray], max_batch: int) -> np.ndarray: ...


@dataclass
class AudioEmbedder:
    """MERT + CLaMP3 audio tower: mono waveforms at ``sample_rate`` -> vectors. Equal-length
    MERT windows share a forward pass and the segments of many tracks share tower batches."""

    mert: WindowEncoder
    tower: FeatureEncoder
    info: ModelInfo
    mert_batch_windows: int
    tower_batch_segments: int
    runtime: str = "torch"
    """What runs MERT and the tower: ``torch``, ``onnxruntime``, or ``mert=..., tower=...``."""
    resampler: Resampler = "sinc"
    """The reference resamples with torchaudio's sinc filter, which ``sinc`` reproduces."""

    def __post_init__(self) -> None:
        if self.mert.hidden_size != self.tower.input_dim:
            raise ModelFilesError(
                f"MERT gives {self.mert.hidden_size}-d vectors but the CLaMP3 audio tower takes "
                f"{self.tower.input_dim}-d input: the MERT and CLaMP3 files do not belong together"
            )

    @property
    def sample_rate(self) -> int:
        return self.mert.sample_rate

    @property
    def dim(self) -> int:
        return self.tower.dim

    def features(self, waveforms: Sequence[np.ndarray]) -> list[np.ndarray]:
        """MERT window vectors ``[n_windows, hidden]`` per mono track at :attr:`sample_rate`
        (not normalised): what the feature cache holds."""
        per_track = [prepare_windows(wave, self.sample_rate) for wave in waveforms]
        windows = [w for track in per_track for w in track]
        vectors = self.mert.window_vectors(windows, self.mert_batch_windows)
        release_memory()
        return split_rows(vectors, [len(track) for track in per_track])

    def embed_features(self, features: Sequence[np.ndarray]) -> np.ndarray:
        """L2-normalised vectors ``[n, dim]`` from MERT window vectors."""
        if not features:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalize(self.tower.encode(features, self.tower_batch_segments))

    def embed(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        return self.embed_features(self.features(waveforms))


class Clamp3Family:
    """MERT -> CLaMP3 (see the module docstring)."""

    name = "clamp3"
    parts: tuple[Part, ...] = ALL_PARTS
    audio_parts: tuple[Part, ...] = ("mert", "clamp3")
    text_parts: tuple[Part, ...] = ("xlmr", "clamp3")
    pipeline_version = PIPELINE_VERSION
    sample_rate = 24_000  # MERT-v1-95M's rate; the loaded model's config is what counts

    def describe(self, settings: ModelsSettings, files: ModelFiles) -> ModelInfo:
        """The dimension comes from a cached export's manifest when there is one (no torch),
        else from the checkpoint, memory-mapped through torch."""
        dim = None
        if "onnxruntime" in (
            onnx.choose_runtime(settings, "text"),
            onnx.choose_runtime(settings, "audio"),
        ):
            dim = cached_dim(settings, files)
        if dim is None:
            from timbre.embedding.clamp3_torch import Clamp3Checkpoint

            dim = Clamp3Checkpoint(files.require("clamp3")).embedding_dim()
        return ModelInfo.from_files(files, settings.clamp3.filename, dim)

    def decoding(self, files: ModelFiles) -> tuple[int, Resampler]:
        """MERT's input rate (from its config), reached with the reference's sinc filter."""
        config = files.require("mert") / "config.json"
        try:
            rate = int(json.loads(config.read_text(encoding="utf-8"))["sample_rate"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelFilesError(f"cannot read MERT's sample_rate from {config}: {exc}") from exc
        return rate, "sinc"

    def load_audio(
        self, settings: ModelsSettings, files: ModelFiles, batches: bool
    ) -> AudioEmbedder:
        if onnx.choose_runtime(settings, "audio") == "torch":
            return _torch_audio(settings, files)
        mert, mert_rt = onnx.load(settings, mert_spec(settings, files, batches))
        tower, tower_rt = onnx.load(settings, audio_tower_spec(settings, files))
        return AudioEmbedder(
            mert,
            tower,
            ModelInfo.from_files(files, settings.clamp3.filename, tower.dim),
            settings.mert_batch_windows.cpu,
            settings.tower_batch_segments.cpu,
            runtime=mert_rt if mert_rt == tower_rt else f"mert={mert_rt}, tower={tower_rt}",
        )

    def load_text(self, settings: ModelsSettings, files: ModelFiles) -> TextEmbedder:
        if onnx.choose_runtime(settings, "text") == "torch":
            return _torch_text(settings, files)
        tower, runtime = onnx.load(settings, text_spec(settings, files))
        info = ModelInfo.from_files(files, settings.clamp3.filename, tower.dim)
        return TextEmbedder(tower, info, settings.tower_batch_segments.cpu, runtime=runtime)

    def write_random(self, target: Path, size: Size, seed: int) -> None:
        from timbre.embedding.random_bundle import write_random_bundle

        write_random_bundle(target, size, seed=seed)

    def export_specs(self, settings: ModelsSettings, files: ModelFiles, side: Side) -> list[Spec]:
        if side == "text":
            return [text_spec(settings, files)]
        return [mert_spec(settings, files), audio_tower_spec(settings, files)]


def _torch_audio(settings: ModelsSettings, files: ModelFiles) -> AudioEmbedder:
    """MERT and the audio tower in PyTorch (the reference implementation, and the GPU path)."""
    from timbre.embedding.clamp3_torch import AudioTower, Clamp3Checkpoint, MertEncoder

    configure_threads(settings.threads)
    device = select_device(settings.device)
    ckpt = Clamp3Checkpoint(files.require("clamp3"))
    info = ModelInfo.from_files(files, settings.clamp3.filename, ckpt.embedding_dim())
    mert = MertEncoder.load(files.require("mert"), device)
    tower = AudioTower.load(ckpt, device)
    return AudioEmbedder(
        mert,
        tower,
        info,
        settings.mert_batch_windows.on(device.type),
        settings.tower_batch_segments.on(device.type),
    )


def _torch_text(settings: ModelsSettings, files: ModelFiles) -> TextEmbedder:
    from timbre.embedding.clamp3_torch import Clamp3Checkpoint, TextTower

    configure_threads(settings.threads)
    device = select_device(settings.device)
    ckpt = Clamp3Checkpoint(files.require("clamp3"))
    info = ModelInfo.from_files(files, settings.clamp3.filename, ckpt.embedding_dim())
    tower = TextTower.load(ckpt, files.require("xlmr"), device)
    return TextEmbedder(tower, info, settings.tower_batch_segments.on(device.type))


# -- ONNX Runtime ---------------------------------------------------------------------------

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


CLAMP3 = Clamp3Family()
