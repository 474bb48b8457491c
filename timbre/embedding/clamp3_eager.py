"""The clamp3 family on PyTorch: the reference implementation and the GPU path.

Also loads single eager models on the CPU for the ONNX exporter
(:mod:`timbre.embedding.clamp3_onnx`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from timbre.embedding.clamp3_embedder import AudioEmbedder
from timbre.embedding.common import TextEmbedder
from timbre.embedding.files import ModelFiles
from timbre.embedding.info import ModelInfo
from timbre.embedding.mert import MertEncoder
from timbre.embedding.runtime import configure_threads, select_device
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
    """MERT and the audio tower in PyTorch."""
    configure_threads(settings.threads)
    device = select_device(settings.device)
    ckpt = Clamp3Checkpoint(files.require("clamp3"))
    info = ModelInfo.from_files(files, settings.clamp3.filename, ckpt.embedding_dim())
    mert = MertEncoder.load(files.require("mert"), device)
    tower = AudioTower.load(ckpt, device)
    del ckpt
    check_pair(mert.hidden_size, tower.input_dim)
    return AudioEmbedder(
        mert,
        tower,
        info,
        settings.mert_batch_windows.on(device.type),
        settings.tower_batch_segments.on(device.type),
    )


def load_text(settings: ModelsSettings, files: ModelFiles) -> TextEmbedder:
    """The text tower in PyTorch."""
    configure_threads(settings.threads)
    device = select_device(settings.device)
    ckpt = Clamp3Checkpoint(files.require("clamp3"))
    info = ModelInfo.from_files(files, settings.clamp3.filename, ckpt.embedding_dim())
    tower = TextTower.load(ckpt, files.require("xlmr"), device)
    del ckpt
    return TextEmbedder(tower, info, settings.tower_batch_segments.on(device.type))
