"""The clamp3 family on PyTorch: the reference implementation, the GPU path and reduced
precision.

Also loads single eager models on the CPU for the ONNX exporter
(:mod:`timbre.embedding.clamp3_onnx`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from timbre.embedding.clamp3_embedder import AudioEmbedder
from timbre.embedding.common import PROBE_TEXTS, TextEmbedder, probe_waveforms
from timbre.embedding.files import ModelFiles
from timbre.embedding.info import ModelInfo
from timbre.embedding.mert import MertEncoder
from timbre.embedding.runtime import (
    adopt_if_faithful,
    configure_threads,
    half_dtype,
    quantize_int8,
    resolve_precision,
    select_device,
)
from timbre.embedding.towers import AudioTower, Clamp3Checkpoint, TextTower
from timbre.errors import ModelFilesError
from timbre.settings import ModelsSettings

CPU = torch.device("cpu")


def check_pair(mert_hidden: int, tower_input: int) -> None:
    """MERT's width must be the audio tower's input width."""
    if mert_hidden != tower_input:
        raise ModelFilesError(
            f"MERT gives {mert_hidden}-d vectors but the CLaMP3 audio tower takes "
            f"{tower_input}-d input: the MERT and CLaMP3 files do not belong together"
        )


def cpu_mert(settings: ModelsSettings, mert_dir: Path) -> MertEncoder:
    configure_threads(settings.threads)
    return MertEncoder.load(mert_dir, CPU)


def cpu_audio_tower(settings: ModelsSettings, ckpt: Path) -> AudioTower:
    configure_threads(settings.threads)
    return AudioTower.load(Clamp3Checkpoint(ckpt), CPU)


def cpu_text_tower(settings: ModelsSettings, ckpt: Path, xlmr_dir: Path) -> TextTower:
    configure_threads(settings.threads)
    return TextTower.load(Clamp3Checkpoint(ckpt), xlmr_dir, CPU)


def load_audio(settings: ModelsSettings, files: ModelFiles) -> AudioEmbedder:
    """MERT and the audio tower in PyTorch, in the configured precision if it passes its gate."""
    configure_threads(settings.threads)
    device = select_device(settings.device)
    precision = resolve_precision(settings.audio_precision, device, "models.audio_precision")
    ckpt = Clamp3Checkpoint(files.require("clamp3"))
    info = ModelInfo.from_files(files, settings.clamp3.filename, ckpt.embedding_dim())
    mert = MertEncoder.load(files.require("mert"), device)
    tower = AudioTower.load(ckpt, device)
    del ckpt
    check_pair(mert.hidden_size, tower.input_dim)
    embedder = AudioEmbedder(
        mert,
        tower,
        info,
        settings.mert_batch_windows.on(device.type),
        settings.tower_batch_segments.on(device.type),
    )
    if precision != "fp32":
        _reduce_audio(embedder, mert, tower, precision, settings.precision_min_cosine)
    return embedder


def load_text(settings: ModelsSettings, files: ModelFiles) -> TextEmbedder:
    """The text tower in PyTorch, in the configured precision if it passes its gate."""
    configure_threads(settings.threads)
    device = select_device(settings.device)
    precision = resolve_precision(settings.text_precision, device, "models.text_precision")
    ckpt = Clamp3Checkpoint(files.require("clamp3"))
    info = ModelInfo.from_files(files, settings.clamp3.filename, ckpt.embedding_dim())
    tower = TextTower.load(ckpt, files.require("xlmr"), device)
    del ckpt
    embedder = TextEmbedder(tower, info, settings.tower_batch_segments.on(device.type))
    if precision != "fp32":
        fp32 = tower.model

        def swap_in() -> None:
            if precision == "int8":
                tower.model = quantize_int8(fp32)
            else:
                tower.half = half_dtype(precision)

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


def _reduce_audio(
    embedder: AudioEmbedder,
    mert: MertEncoder,
    tower: AudioTower,
    precision: str,
    min_cosine: float,
) -> None:
    """Run MERT and the audio tower in ``precision`` if the probes agree with fp32."""
    fp32_mert, fp32_bert = mert.model, tower.bert

    def swap_in() -> None:
        if precision == "int8":
            mert.model, tower.bert = quantize_int8(fp32_mert), quantize_int8(fp32_bert)
        else:
            mert.half = tower.half = half_dtype(precision)

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
