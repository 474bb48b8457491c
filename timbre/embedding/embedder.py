"""The two embedding paths Timbre serves: audio -> vector and text -> vector.

Both return L2-normalised float32 vectors in the shared CLaMP3 space, so cosine similarity is
a dot product (Qdrant Cosine and FAISS inner product agree). The reference stores
un-normalised vectors and normalises at comparison time; normalising once here is the same
ranking and the same scores.

Each side runs on one of two runtimes (``models.runtime``): PyTorch (:mod:`eager`, the
reference implementation and the GPU path) or ONNX Runtime (:mod:`onnx_backend`, the CPU
default once its export agrees with PyTorch). Both sit behind the same classes here, and this
module imports neither torch nor onnxruntime itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from timbre.audio.windows import prepare_windows
from timbre.embedding.files import ModelFiles, resolve_model_files
from timbre.embedding.info import ModelInfo
from timbre.embedding.runtime import release_memory
from timbre.settings import ModelsSettings

log = logging.getLogger(__name__)


class WindowEncoder(Protocol):
    """MERT on either runtime (``MertEncoder``, ``OrtMertEncoder``)."""

    sample_rate: int
    hidden_size: int

    def window_vectors(self, windows: Sequence[np.ndarray], max_batch: int) -> np.ndarray: ...


class FeatureEncoder(Protocol):
    """The CLaMP3 audio tower on either runtime (``AudioTower``, ``OrtAudioTower``)."""

    dim: int
    input_dim: int

    def encode(self, features: Sequence[np.ndarray], max_batch: int) -> np.ndarray: ...


class TextEncoder(Protocol):
    """The CLaMP3 text tower on either runtime (``TextTower``, ``OrtTextTower``)."""

    dim: int

    def token_ids(self, text: str) -> list[int]: ...
    def encode(self, texts: Sequence[str], max_batch: int) -> np.ndarray: ...


PROBE_TEXTS = (
    "punchy techno kick",
    "warm atmospheric pad",
    "crispy closed hi-hat, 808 style",
    "dark rolling bassline in F minor at 124 BPM",
    "vocal chop\nwith reverb tail",
    "シンセのリード",
    "x",
)
"""Fixed inputs on which reduced precision (and the ONNX export) must agree with fp32."""


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


@dataclass
class AudioEmbedder:
    """MERT + CLaMP3 audio tower: mono waveforms at ``sample_rate`` -> vectors.

    Batches across tracks where that is exact: equal-length MERT windows share a forward
    pass, and the segments of many tracks share tower batches.
    """

    mert: WindowEncoder
    tower: FeatureEncoder
    info: ModelInfo
    mert_batch_windows: int
    tower_batch_segments: int
    precision: dict[str, float] = field(default_factory=dict)
    """Measured agreement of each reduced precision tried: ``{"<side>_<precision>_min_cosine"}``."""
    running: str = "fp32"
    """The precision in use (fp32 unless a reduced one passed the agreement check)."""
    runtime: str = "torch"
    """What runs MERT and the tower: ``torch``, ``onnxruntime``, or ``mert=..., tower=...``."""

    @property
    def sample_rate(self) -> int:
        return self.mert.sample_rate

    @property
    def dim(self) -> int:
        return self.tower.dim

    def features(self, waveforms: Sequence[np.ndarray]) -> list[np.ndarray]:
        """MERT window vectors ``[n_windows, hidden]`` per track (what the feature cache holds).

        Args:
            waveforms: mono float32 tracks at :attr:`sample_rate`, not normalised.
        """
        windows: list[np.ndarray] = []
        counts: list[int] = []
        for wave in waveforms:
            ws = prepare_windows(wave, self.sample_rate)
            windows.extend(ws)
            counts.append(len(ws))
        vectors = self.mert.window_vectors(windows, self.mert_batch_windows)
        release_memory()
        out, start = [], 0
        for count in counts:
            out.append(vectors[start : start + count])
            start += count
        return out

    def embed_features(self, features: Sequence[np.ndarray]) -> np.ndarray:
        """L2-normalised vectors ``[n, dim]`` from MERT window vectors."""
        if not features:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalize(self.tower.encode(features, self.tower_batch_segments))

    def embed(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """L2-normalised vectors ``[n, dim]`` for mono waveforms at :attr:`sample_rate`."""
        return self.embed_features(self.features(waveforms))


@dataclass
class TextEmbedder:
    """XLM-R tokenizer + CLaMP3 text tower: text -> vectors."""

    tower: TextEncoder
    info: ModelInfo
    batch_segments: int
    precision: dict[str, float] = field(default_factory=dict)
    running: str = "fp32"
    runtime: str = "torch"
    """What runs the text tower: ``torch`` or ``onnxruntime``."""

    @property
    def dim(self) -> int:
        return self.tower.dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised vectors ``[n, dim]``; empty or whitespace-only text is refused."""
        for text in texts:
            if not text.strip():
                raise ValueError("cannot embed empty text")
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalize(self.tower.encode(texts, self.batch_segments))


def describe_models(settings: ModelsSettings, files: ModelFiles | None = None) -> ModelInfo:
    """The identity of the configured models without loading them.

    The dimension comes from a cached export's manifest when there is one (no torch), else
    from the checkpoint, memory-mapped through torch.
    """
    from timbre.embedding.onnx_backend import cached_dim, choose_runtime

    files = files or resolve_model_files(settings, ("mert", "clamp3"))
    dim = None
    if "onnxruntime" in (choose_runtime(settings, "text"), choose_runtime(settings, "audio")):
        dim = cached_dim(settings, files)
    if dim is None:
        from timbre.embedding.towers import Clamp3Checkpoint

        dim = Clamp3Checkpoint(files.require("clamp3")).embedding_dim()
    return ModelInfo.from_files(files, settings.clamp3.filename, dim)


def load_audio_embedder(
    settings: ModelsSettings, files: ModelFiles | None = None, *, batches: bool = True
) -> AudioEmbedder:
    """Load MERT and the CLaMP3 audio tower (not the text tower: ingest never needs it).

    ``batches``: calls will carry many files' windows (a parallel ingest job), which sets how
    ``models.mert_streams: auto`` runs MERT (:func:`timbre.embedding.onnx_backend.mert_streams`).

    Raises:
        ModelFilesError: a model file is missing, malformed or inconsistent.
        ConfigError: the configured precision or runtime cannot run on the device.
    """
    from timbre.embedding import onnx_backend as onnx

    files = files or resolve_model_files(settings, ("mert", "clamp3"))
    if onnx.choose_runtime(settings, "audio") == "torch":
        from timbre.embedding import eager

        return eager.load_audio(settings, files)
    cache = onnx.export_cache(settings)
    min_cos = settings.onnx_min_cosine
    mert, mert_rt = onnx.load_component(cache, onnx.mert_spec(settings, files, batches), min_cos)
    tower, tower_rt = onnx.load_component(cache, onnx.audio_tower_spec(settings, files), min_cos)
    if mert.hidden_size != tower.input_dim:
        from timbre.errors import ModelFilesError

        raise ModelFilesError(
            f"MERT gives {mert.hidden_size}-d vectors but the CLaMP3 audio tower takes "
            f"{tower.input_dim}-d input: the MERT and CLaMP3 files do not belong together"
        )
    runtime = mert_rt if mert_rt == tower_rt else f"mert={mert_rt}, tower={tower_rt}"
    return AudioEmbedder(
        mert,
        tower,
        ModelInfo.from_files(files, settings.clamp3.filename, tower.dim),
        settings.mert_batch_windows.cpu,
        settings.tower_batch_segments.cpu,
        runtime=runtime,
    )


def load_text_embedder(settings: ModelsSettings, files: ModelFiles | None = None) -> TextEmbedder:
    """Load the XLM-R tokenizer and the CLaMP3 text tower.

    Raises:
        ModelFilesError: a model file is missing, malformed or inconsistent.
        ConfigError: the configured precision or runtime cannot run on the device.
    """
    from timbre.embedding import onnx_backend as onnx

    files = files or resolve_model_files(settings, ("xlmr", "clamp3"))
    if onnx.choose_runtime(settings, "text") == "torch":
        from timbre.embedding import eager

        return eager.load_text(settings, files)
    spec = onnx.text_spec(settings, files)
    tower, runtime = onnx.load_component(
        onnx.export_cache(settings), spec, settings.onnx_min_cosine
    )
    return TextEmbedder(
        tower,
        ModelInfo.from_files(files, settings.clamp3.filename, tower.dim),
        settings.tower_batch_segments.cpu,
        runtime=runtime,
    )


def probe_waveforms(sample_rate: int) -> list[np.ndarray]:
    """Deterministic probe clips for precision checks: a kick, a hat, a chord loop, a quiet tail."""
    rng = np.random.default_rng(1234)
    t = lambda s: np.arange(int(s * sample_rate)) / sample_rate  # noqa: E731
    kick_t = t(0.4)
    kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-kick_t * 30)) * kick_t) * np.exp(-kick_t * 8)
    hat = rng.standard_normal(int(0.12 * sample_rate)) * np.exp(-t(0.12) * 40)
    loop_t = t(7.0)
    chord = np.mean([np.sin(2 * np.pi * f * loop_t) for f in (220.0, 277.2, 329.6)], axis=0)
    quiet = np.concatenate([chord[: 3 * sample_rate], 1e-4 * rng.standard_normal(3 * sample_rate)])
    return [x.astype(np.float32) for x in (kick, hat, chord, quiet)]


__all__ = [
    "PROBE_TEXTS",
    "AudioEmbedder",
    "ModelInfo",
    "TextEmbedder",
    "l2_normalize",
    "load_audio_embedder",
    "load_text_embedder",
    "probe_waveforms",
]
