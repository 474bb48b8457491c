"""The clap family: LAION-CLAP (``laion/larger_clap_general``) through transformers' ClapModel.

Audio: mono at the checkpoint's rate (48 kHz) -> 10 s windows -> Slaney log-mel
(:mod:`clap_inputs`) -> the HTSAT encoder and its projection -> L2-normalised; a clip over
10 s averages its windows' normalised vectors. Text: the checkpoint's RoBERTa tokenizer ->
the RoBERTa encoder's pooled output and its projection. Both sides run on ONNX Runtime (the
CPU default, gated by :mod:`onnx_backend`) or in PyTorch (:mod:`clap_torch`). Imports no
torch: a warm start runs on onnxruntime, numpy and ``tokenizers`` alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from timbre.audio.resample import Resampler
from timbre.embedding import onnx_backend as onnx
from timbre.embedding.clap_inputs import ClapPolicy, ClapTokens, FrontEnd, pipeline_version
from timbre.embedding.family import (
    PROBE_TEXTS,
    Side,
    Size,
    TextEmbedder,
    l2_normalize,
    probe_waveforms,
    split_rows,
)
from timbre.embedding.files import CLAP_WEIGHT_FILES, ModelFiles, Part, first_file
from timbre.embedding.info import ModelInfo
from timbre.embedding.onnx_backend import Graph, Spec, ort_threads
from timbre.embedding.runtime import configure_threads, select_device
from timbre.errors import ModelFilesError
from timbre.settings_models import ModelsSettings


class MelEncoder(Protocol):
    """The CLAP audio tower on a runtime: log-mel windows -> projected vectors."""

    dim: int

    def encode(self, mels: Sequence[np.ndarray], max_batch: int) -> np.ndarray: ...


@dataclass
class ClapAudioEmbedder:
    """Windows of every clip share the encoder's batches; one vector per clip."""

    front: FrontEnd
    tower: MelEncoder
    info: ModelInfo
    batch_windows: int
    runtime: str = "torch"
    resampler: Resampler = "soxr_vhq"
    """The log-mel reads the bands above a low-rate file's Nyquist frequency in dB: only a
    resampler whose stopband lies below the mel floor leaves them as empty as the reference
    does (a short sinc moved 22.05 kHz files to cosine 0.94)."""

    @property
    def sample_rate(self) -> int:
        return self.front.sample_rate

    @property
    def dim(self) -> int:
        return self.tower.dim

    def features(self, waveforms: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The normalised vectors ``[n_windows, dim]`` of each clip's windows."""
        per_clip = [self.front.windows(wave) for wave in waveforms]
        mels = [self.front.log_mel(w) for windows in per_clip for w in windows]
        if not mels:
            return []
        vectors = l2_normalize(self.tower.encode(mels, self.batch_windows))
        return split_rows(vectors, [len(windows) for windows in per_clip])

    def embed_features(self, features: Sequence[np.ndarray]) -> np.ndarray:
        """One L2-normalised vector per clip: the mean of its windows' vectors, renormalised
        (a single window's vector is the reference's own)."""
        if not features:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalize(np.stack([f.mean(axis=0) for f in features]))

    def embed(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        return self.embed_features(self.features(waveforms))


def policy_of(settings: ModelsSettings) -> ClapPolicy:
    c = settings.clap
    return ClapPolicy(short_clip=c.short_clip, long_clip=c.long_clip, max_windows=c.max_windows)


class ClapFamily:
    """LAION-CLAP (see the module docstring)."""

    name = "clap"
    parts: tuple[Part, ...] = ("clap",)
    audio_parts: tuple[Part, ...] = ("clap",)
    text_parts: tuple[Part, ...] = ("clap",)
    pipeline_version = pipeline_version(ClapPolicy())
    sample_rate = 48_000  # the LAION checkpoints' rate; preprocessor_config.json is what counts

    def describe(self, settings: ModelsSettings, files: ModelFiles) -> ModelInfo:
        return ModelInfo.for_clap(
            files, _projection_dim(files.require("clap")), pipeline_version(policy_of(settings))
        )

    def decoding(self, files: ModelFiles) -> tuple[int, Resampler]:
        front = FrontEnd.load(files.require("clap"), ClapPolicy())
        return front.sample_rate, ClapAudioEmbedder.resampler

    def load_audio(
        self, settings: ModelsSettings, files: ModelFiles, batches: bool
    ) -> ClapAudioEmbedder:
        """``batches`` changes nothing: every window is a full 10 s, so batches are uniform."""
        folder = files.require("clap")
        front = FrontEnd.load(folder, policy_of(settings))
        info = self.describe(settings, files)
        if onnx.choose_runtime(settings, "audio") == "onnxruntime":
            tower, runtime = onnx.load(settings, audio_spec(settings, files))
            batch = settings.clap.batch_windows.cpu
            return ClapAudioEmbedder(front, tower, info, batch, runtime=runtime)
        from timbre.embedding.clap_torch import ClapAudioTower

        configure_threads(settings.threads)
        device = select_device(settings.device)
        tower = ClapAudioTower.load(folder, device)
        return ClapAudioEmbedder(front, tower, info, settings.clap.batch_windows.on(device.type))

    def load_text(self, settings: ModelsSettings, files: ModelFiles) -> TextEmbedder:
        info = self.describe(settings, files)
        if onnx.choose_runtime(settings, "text") == "onnxruntime":
            tower, runtime = onnx.load(settings, text_spec(settings, files))
            return TextEmbedder(tower, info, settings.clap.batch_texts.cpu, runtime=runtime)
        from timbre.embedding.clap_torch import ClapTextTower

        configure_threads(settings.threads)
        device = select_device(settings.device)
        tower = ClapTextTower.load(files.require("clap"), device)
        return TextEmbedder(tower, info, settings.clap.batch_texts.on(device.type))

    def write_random(self, target: Path, size: Size, seed: int) -> None:
        from timbre.embedding.files import write_manifest
        from timbre.embedding.random_clap import write_random_clap

        write_random_clap(target, size, seed=seed)
        write_manifest(
            target,
            random_weights=True,
            sources={"clap": {"repo": f"timbre/random-{size}-clap", "revision": f"seed-{seed}"}},
        )

    def export_specs(self, settings: ModelsSettings, files: ModelFiles, side: Side) -> list[Spec]:
        if side == "text":
            return [text_spec(settings, files)]
        return [audio_spec(settings, files)]


def _projection_dim(folder: Path) -> int:
    """The embedding size, from ``config.json`` (no torch)."""
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        dim = int(config["projection_dim"])
        fused = bool(config.get("audio_config", {}).get("enable_fusion", False))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelFilesError(f"{path} is unreadable or not a ClapConfig ({exc})") from exc
    if fused:
        raise ModelFilesError(
            f"{folder} is a fused CLAP checkpoint; Timbre runs the unfused ones "
            "(e.g. laion/larger_clap_general)"
        )
    return dim


# -- ONNX Runtime ---------------------------------------------------------------------------

LONG_PROBE_TEXT = "a long description of a drum loop with many words " * 60
"""Past the 512-token position limit: the truncation path."""


class OrtClapAudioTower:
    """Log-mel windows -> projected vectors, as ``ClapAudioTower``."""

    def __init__(self, graph: Graph, dim: int) -> None:
        self.graph = graph
        self.dim = dim

    def encode(self, mels: Sequence[np.ndarray], max_batch: int) -> np.ndarray:
        out = [
            self.graph(mels=np.stack(mels[i : i + max_batch])[:, None].astype(np.float32))
            for i in range(0, len(mels), max_batch)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


class OrtClapTextTower:
    """Texts -> projected vectors, as ``ClapTextTower``."""

    def __init__(self, graph: Graph, tokens: ClapTokens, dim: int) -> None:
        self.graph = graph
        self.tokens = tokens
        self.dim = dim

    def encode(self, texts: Sequence[str], max_batch: int) -> np.ndarray:
        out = []
        for start in range(0, len(texts), max_batch):
            ids, mask = self.tokens.batch(list(texts[start : start + max_batch]))
            out.append(self.graph(input_ids=ids, attention_mask=mask))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


def audio_spec(settings: ModelsSettings, files: ModelFiles) -> Spec:
    folder = files.require("clap")
    front = FrontEnd.load(folder, ClapPolicy())
    batch = settings.clap.batch_windows.cpu
    threads = ort_threads(settings)

    def load_eager() -> Any:
        from timbre.embedding.clap_torch import CPU, ClapAudioTower

        configure_threads(settings.threads)
        return ClapAudioTower.load(folder, CPU)

    def probes(dims: dict[str, int], reload: bool) -> list[np.ndarray]:
        waves = probe_waveforms(front.sample_rate)
        mels = [front.log_mel(w) for wave in waves for w in front.windows(wave)]
        return mels[:1] if reload else mels  # a warm load: one window, the unit of cost

    return Spec(
        kind="clap_audio",
        name="CLAP audio tower",
        sources=[first_file(folder, CLAP_WEIGHT_FILES), folder / "config.json"],
        load_eager=load_eager,
        dims=lambda t: {"dim": int(t.dim)},
        load_ort=lambda path, dims: OrtClapAudioTower(
            Graph(path, threads, ("mels",)), int(dims["dim"])
        ),
        probes=probes,
        run=lambda tower, mels: tower.encode(mels, batch),
    )


def text_spec(settings: ModelsSettings, files: ModelFiles) -> Spec:
    folder = files.require("clap")
    batch = settings.clap.batch_texts.cpu
    threads = ort_threads(settings)

    def load_eager() -> Any:
        from timbre.embedding.clap_torch import CPU, ClapTextTower

        configure_threads(settings.threads)
        return ClapTextTower.load(folder, CPU)

    def load_ort(path: Path, dims: dict[str, int]) -> OrtClapTextTower:
        graph = Graph(path, threads, ("input_ids", "attention_mask"))
        return OrtClapTextTower(graph, ClapTokens.load(folder), int(dims["dim"]))

    return Spec(
        kind="clap_text",
        name="CLAP text tower",
        sources=[
            first_file(folder, CLAP_WEIGHT_FILES),
            folder / "config.json",
            folder / "tokenizer.json",
        ],
        load_eager=load_eager,
        dims=lambda t: {"dim": int(t.dim)},
        load_ort=load_ort,
        probes=lambda dims, reload: [*PROBE_TEXTS] if reload else [*PROBE_TEXTS, LONG_PROBE_TEXT],
        run=lambda tower, texts: tower.encode(texts, batch),
    )


CLAP = ClapFamily()
