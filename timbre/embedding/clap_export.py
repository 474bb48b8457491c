"""The clap family's towers as ONNX graphs (torch's dynamo exporter, then ORT's fusions).

* audio: ``mels [B, 1, frames, bands] -> [B, dim]`` (HTSAT, pooling, audio_projection);
* text: ``input_ids, attention_mask [B, L] -> [B, dim]`` (RoBERTa, pooler, text_projection).

Projections only, not normalised: the runtime side normalises, as it does on PyTorch. The
batch axis is dynamic; text length runs up to the position limit. Exported from the modules
Timbre loaded from the checkpoint, never downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.export import Dim

from timbre.embedding.clap_eager import ClapAudioTower, ClapTextTower
from timbre.embedding.onnx_export import MAX_BATCH, _export


class _AudioGraph(nn.Module):
    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        vectors: torch.Tensor = self.model(input_features=mels).audio_embeds
        return vectors


class _TextGraph(nn.Module):
    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        vectors: torch.Tensor = out.text_embeds
        return vectors


def export_audio(tower: ClapAudioTower, frames: int, bands: int, target: Path) -> Path:
    """Export the audio tower into ``target`` (a folder); returns the model file."""
    mels = torch.randn(2, 1, frames, bands) * 10.0 - 40.0
    shapes = {"mels": {0: Dim("batch", min=1, max=MAX_BATCH)}}
    return _export(_AudioGraph(tower.model), (mels,), shapes, target)


def export_text(tower: ClapTextTower, target: Path) -> Path:
    """Export the text tower into ``target``; returns the model file."""
    batch = Dim("batch", min=1, max=MAX_BATCH)
    length = Dim("tokens", min=1, max=tower.tokens.limit)
    ids = torch.full((2, 7), 5, dtype=torch.long)
    mask = torch.ones(2, 7, dtype=torch.long)
    shapes = {"input_ids": {0: batch, 1: length}, "attention_mask": {0: batch, 1: length}}
    return _export(_TextGraph(tower.model), (ids, mask), shapes, target)
