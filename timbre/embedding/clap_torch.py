"""The clap family's towers in PyTorch (transformers' own CLAP models) and their ONNX graphs.

Each side loads only its half of the ``ClapModel`` file, so ingest never holds the text
encoder nor the service's text side the audio one. Both return the projections ``ClapModel``
computes before normalising; each ``forward`` is also its ONNX graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.export import Dim

from timbre.embedding.clap_inputs import ClapPolicy, ClapTokens, FrontEnd
from timbre.embedding.onnx_export import MAX_BATCH, export_module
from timbre.errors import ModelFilesError

CPU = torch.device("cpu")


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


class ClapAudioTower(nn.Module):
    """Log-mel windows ``[n, frames, bands]`` -> projected (not normalised) vectors ``[n, dim]``.
    ``forward`` (``mels [B, 1, frames, bands] -> [B, dim]``) is also the exported graph."""

    def __init__(self, model: Any, front: FrontEnd, device: torch.device) -> None:
        super().__init__()
        self.model = model.to(device)
        self.front = front
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
        return cls(model, FrontEnd.load(folder, ClapPolicy()), device)

    @torch.inference_mode()
    def encode(self, mels: Sequence[np.ndarray], max_batch: int) -> np.ndarray:
        out = []
        for start in range(0, len(mels), max_batch):
            batch = torch.from_numpy(np.stack(mels[start : start + max_batch]))[:, None]
            out.append(self(batch.to(self.device)).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        embeds: torch.Tensor = self.model(input_features=mels).audio_embeds
        return embeds

    def export(self, target: Path) -> Path:
        """Export :meth:`forward` into the folder ``target``; returns the model file."""
        frames = self.front.window_samples // self.front.hop + 1
        mels = torch.randn(2, 1, frames, self.front.mel_filters.shape[1]) * 10.0 - 40.0
        shapes = {"mels": {0: Dim("batch", min=1, max=MAX_BATCH)}}
        return export_module(self, (mels,), shapes, target)


class ClapTextTower(nn.Module):
    """Texts -> projected (not normalised) vectors ``[n, dim]``. ``forward`` (``input_ids,
    attention_mask [B, L] -> [B, dim]``) is also the exported graph."""

    def __init__(self, model: Any, tokens: ClapTokens, device: torch.device) -> None:
        super().__init__()
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
            result = self(
                torch.from_numpy(ids).to(self.device), torch.from_numpy(mask).to(self.device)
            )
            out.append(result.float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        embeds: torch.Tensor = out.text_embeds
        return embeds

    def export(self, target: Path) -> Path:
        """Export :meth:`forward` (lengths up to the position limit) into ``target``."""
        batch = Dim("batch", min=1, max=MAX_BATCH)
        length = Dim("tokens", min=1, max=self.tokens.limit)
        ids = torch.full((2, 7), 5, dtype=torch.long)
        mask = torch.ones(2, 7, dtype=torch.long)
        shapes = {"input_ids": {0: batch, 1: length}, "attention_mask": {0: batch, 1: length}}
        return export_module(self, (ids, mask), shapes, target)
