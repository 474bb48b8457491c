"""The clamp3 family: MERT-v1-95M window features, then the CLaMP3 (SAAS) audio and text
towers, reproducing the reference to the letter (docs/model-spec.md).

The family and its audio path, without torch: a warm start runs on onnxruntime, numpy and
``tokenizers`` alone (the graphs: :mod:`clamp3_onnx`; the PyTorch models: :mod:`clamp3_torch`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from timbre.audio.resample import Resampler
from timbre.audio.windows import PIPELINE_VERSION, prepare_windows
from timbre.embedding import onnx_backend as onnx
from timbre.embedding.clamp3_onnx import audio_tower_spec, cached_dim, mert_spec, text_spec
from timbre.embedding.family import (
    Side,
    Size,
    TextEmbedder,
    l2_normalize,
    split_rows,
)
from timbre.embedding.files import ALL_PARTS, ModelFiles, Part
from timbre.embedding.info import ModelInfo
from timbre.embedding.onnx_backend import Spec
from timbre.embedding.runtime import configure_threads, release_memory, select_device
from timbre.errors import ModelFilesError
from timbre.settings_models import ModelsSettings


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


CLAMP3 = Clamp3Family()
