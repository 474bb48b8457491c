"""The two embedding paths Timbre serves: audio -> vector and text -> vector.

Both return L2-normalised float32 vectors in the shared CLaMP3 space, so cosine similarity is
a dot product (Qdrant Cosine and FAISS inner product agree). The reference stores
un-normalised vectors and normalises at comparison time; normalising once here is the same
ranking and the same scores.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from timbre.audio.windows import prepare_windows
from timbre.embedding.files import ModelFiles, Part, resolve_model_files
from timbre.embedding.info import ModelInfo
from timbre.embedding.mert import MertEncoder
from timbre.embedding.runtime import (
    HALF,
    adopt_if_faithful,
    configure_threads,
    quantize_int8,
    release_memory,
    resolve_precision,
    select_device,
)
from timbre.embedding.towers import AudioTower, Clamp3Checkpoint, TextTower
from timbre.errors import ModelFilesError
from timbre.settings import ModelsSettings

log = logging.getLogger(__name__)

PROBE_TEXTS = (
    "punchy techno kick",
    "warm atmospheric pad",
    "crispy closed hi-hat, 808 style",
    "dark rolling bassline in F minor at 124 BPM",
    "vocal chop\nwith reverb tail",
    "シンセのリード",
    "x",
)
"""Fixed inputs on which reduced precision must agree with fp32 before it is used."""


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


@dataclass
class AudioEmbedder:
    """MERT + CLaMP3 audio tower: mono waveforms at ``sample_rate`` -> vectors.

    Batches across tracks where that is exact: equal-length MERT windows share a forward
    pass, and the segments of many tracks share tower batches.
    """

    mert: MertEncoder
    tower: AudioTower
    info: ModelInfo
    mert_batch_windows: int
    tower_batch_segments: int
    precision: dict[str, float] = field(default_factory=dict)
    """Measured agreement of each reduced precision tried: ``{"<side>_<precision>_min_cosine"}``."""
    running: str = "fp32"
    """The precision in use (fp32 unless a reduced one passed the agreement check)."""

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

    tower: TextTower
    info: ModelInfo
    batch_segments: int
    precision: dict[str, float] = field(default_factory=dict)
    running: str = "fp32"

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


def _prepare(settings: ModelsSettings, parts: Sequence[Part], files: ModelFiles | None):
    configure_threads(settings.threads)
    device = select_device(settings.device)
    files = files or resolve_model_files(settings, parts)
    ckpt = Clamp3Checkpoint(files.require("clamp3"))
    info = ModelInfo.from_files(files, settings.clamp3.filename, ckpt.embedding_dim())
    return device, files, ckpt, info


def describe_models(settings: ModelsSettings, files: ModelFiles | None = None) -> ModelInfo:
    """The identity of the configured models without loading them (the checkpoint is only
    memory-mapped to read its dimension)."""
    files = files or resolve_model_files(settings, ("mert", "clamp3"))
    ckpt = Clamp3Checkpoint(files.require("clamp3"))
    return ModelInfo.from_files(files, settings.clamp3.filename, ckpt.embedding_dim())


def load_audio_embedder(settings: ModelsSettings, files: ModelFiles | None = None) -> AudioEmbedder:
    """Load MERT and the CLaMP3 audio tower (not the text tower: ingest never needs it).

    Raises:
        ModelFilesError: a model file is missing, malformed or inconsistent.
        ConfigError: the configured precision cannot run on the device.
    """
    device, files, ckpt, info = _prepare(settings, ("mert", "clamp3"), files)
    precision = resolve_precision(settings.audio_precision, device, "models.audio_precision")
    mert = MertEncoder.load(files.require("mert"), device)
    tower = AudioTower.load(ckpt, device)
    del ckpt
    if mert.hidden_size != tower.input_dim:
        raise ModelFilesError(
            f"MERT gives {mert.hidden_size}-d vectors but the CLaMP3 audio tower takes "
            f"{tower.input_dim}-d input: the MERT and CLaMP3 files do not belong together"
        )
    embedder = AudioEmbedder(
        mert,
        tower,
        info,
        settings.mert_batch_windows.on(device.type),
        settings.tower_batch_segments.on(device.type),
    )
    if precision != "fp32":
        _reduce_audio(embedder, precision, settings.precision_min_cosine)
    return embedder


def load_text_embedder(settings: ModelsSettings, files: ModelFiles | None = None) -> TextEmbedder:
    """Load the XLM-R tokenizer and the CLaMP3 text tower.

    Raises:
        ModelFilesError: a model file is missing, malformed or inconsistent.
        ConfigError: the configured precision cannot run on the device.
    """
    device, files, ckpt, info = _prepare(settings, ("xlmr", "clamp3"), files)
    precision = resolve_precision(settings.text_precision, device, "models.text_precision")
    tower = TextTower.load(ckpt, files.require("xlmr"), device)
    del ckpt
    embedder = TextEmbedder(tower, info, settings.tower_batch_segments.on(device.type))
    if precision != "fp32":
        fp32 = tower.model

        def swap_in() -> None:
            if precision == "int8":
                tower.model = quantize_int8(fp32)
            else:
                tower.half = HALF[precision]

        def swap_out() -> None:
            tower.model, tower.half = fp32, None

        measured = adopt_if_faithful(
            "text tower",
            precision,
            probe=lambda: embedder.embed(PROBE_TEXTS),
            swap_in=swap_in,
            swap_out=swap_out,
            min_cosine=settings.precision_min_cosine,
        )
        embedder.precision[f"text_{precision}_min_cosine"] = measured
        if measured >= settings.precision_min_cosine:
            embedder.running = precision
    return embedder


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


def _reduce_audio(embedder: AudioEmbedder, precision: str, min_cosine: float) -> None:
    """Run MERT and the audio tower in ``precision`` if the probes agree with fp32."""
    mert, tower = embedder.mert, embedder.tower
    fp32_mert, fp32_bert = mert.model, tower.bert

    def swap_in() -> None:
        if precision == "int8":
            mert.model, tower.bert = quantize_int8(fp32_mert), quantize_int8(fp32_bert)
        else:
            mert.half = tower.half = HALF[precision]

    def swap_out() -> None:
        mert.model, tower.bert = fp32_mert, fp32_bert
        mert.half = tower.half = None

    probes = probe_waveforms(embedder.sample_rate)
    measured = adopt_if_faithful(
        "audio path",
        precision,
        probe=lambda: embedder.embed(probes),
        swap_in=swap_in,
        swap_out=swap_out,
        min_cosine=min_cosine,
    )
    embedder.precision[f"audio_{precision}_min_cosine"] = measured
    if measured >= min_cosine:
        embedder.running = precision


__all__ = [
    "AudioEmbedder",
    "ModelInfo",
    "TextEmbedder",
    "l2_normalize",
    "load_audio_embedder",
    "load_text_embedder",
]
