"""The clap family's towers in PyTorch: transformers' own CLAP audio and text models.

Each side loads only its half of the checkpoint (``ClapAudioModelWithProjection`` /
``ClapTextModelWithProjection`` read the ``audio_*`` / ``text_*`` weights of the ``ClapModel``
file), so ingest never holds the text encoder and the service's text side never the audio one.
Their projections are what ``ClapModel.get_audio_features`` / ``get_text_features`` compute
before normalising.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from timbre.embedding.clap_text import ClapTokens
from timbre.embedding.runtime import configure_threads
from timbre.errors import ModelFilesError
from timbre.settings import ModelsSettings

log = logging.getLogger(__name__)


def _quiet_load(cls: Any, folder: Path) -> Any:
    """``from_pretrained`` without its notes on the other tower's weights left unused."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model = cls.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelFilesError(f"cannot load the CLAP checkpoint in {folder}: {exc}") from exc
    finally:
        hf_logging.set_verbosity(level)
    return model.eval()


class ClapAudioTower:
    """Log-mel windows ``[n, frames, bands]`` -> projected (not normalised) vectors ``[n, dim]``."""

    def __init__(self, model: Any, device: torch.device) -> None:
        self.model = model.to(device)
        self.device = device
        self.dim = int(model.config.projection_dim)

    @classmethod
    def load(cls, folder: Path, device: torch.device) -> ClapAudioTower:
        from transformers import ClapAudioModelWithProjection

        model = _quiet_load(ClapAudioModelWithProjection, folder)
        if model.config.enable_fusion:
            raise ModelFilesError(
                f"{folder} is a fused CLAP checkpoint; Timbre runs the unfused ones "
                "(e.g. laion/larger_clap_general)"
            )
        return cls(model, device)

    @torch.inference_mode()
    def encode(self, mels: Sequence[np.ndarray], max_batch: int) -> np.ndarray:
        out = []
        for start in range(0, len(mels), max_batch):
            batch = torch.from_numpy(np.stack(mels[start : start + max_batch]))[:, None]
            result = self.model(input_features=batch.to(self.device))
            out.append(result.audio_embeds.float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


class ClapTextTower:
    """Texts -> projected (not normalised) vectors ``[n, dim]``."""

    def __init__(self, model: Any, tokens: ClapTokens, device: torch.device) -> None:
        self.model = model.to(device)
        self.tokens = tokens
        self.device = device
        self.dim = int(model.config.projection_dim)

    @classmethod
    def load(cls, folder: Path, device: torch.device) -> ClapTextTower:
        from transformers import ClapTextModelWithProjection

        return cls(
            _quiet_load(ClapTextModelWithProjection, folder), ClapTokens.load(folder), device
        )

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], max_batch: int) -> np.ndarray:
        out = []
        for start in range(0, len(texts), max_batch):
            ids, mask = self.tokens.batch(list(texts[start : start + max_batch]))
            result = self.model(
                input_ids=torch.from_numpy(ids).to(self.device),
                attention_mask=torch.from_numpy(mask).to(self.device),
            )
            out.append(result.text_embeds.float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


CPU = torch.device("cpu")


def cpu_audio_tower(settings: ModelsSettings, folder: Path) -> ClapAudioTower:
    """The audio tower on the CPU in fp32 (what the ONNX exporter traces)."""
    configure_threads(settings.threads)
    return ClapAudioTower.load(folder, CPU)


def cpu_text_tower(settings: ModelsSettings, folder: Path) -> ClapTextTower:
    configure_threads(settings.threads)
    return ClapTextTower.load(folder, CPU)
