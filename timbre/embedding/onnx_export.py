"""Export the loaded PyTorch models to ONNX graphs (torch's dynamo exporter).

The graphs are exported from the very modules Timbre loaded from the official checkpoints
(never from a downloaded ONNX file), and each holds the whole per-model computation, so the
runtime side only batches and pads:

* text: ``input_ids, attention_mask [B, L] -> [B, dim]`` (XLM-R, masked mean pool, text_proj);
* audio tower: ``inputs_embeds [B, L, H], attention_mask [B, L] -> [B, dim]`` (BERT, masked
  mean pool, audio_proj);
* MERT: ``windows [B, N] -> [B, H]`` (HuBERT, every hidden state's mean over time, then the
  mean over layers).

Batch and length axes are dynamic (``torch.export.Dim``) within the bounds the pipeline can
produce: up to 128 positions per tower segment, and MERT windows from the shortest padded clip
to a full 5 s window. One graph serves every shape: nothing recompiles at run time. Each
graph then gets ONNX Runtime's transformer fusions (:mod:`timbre.embedding.onnx_fusion`)
before it is gated.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn
from torch.export import Dim

from timbre.audio.windows import MIN_CLIP_S, WINDOW_S
from timbre.embedding.mert import MertEncoder, layer_mean
from timbre.embedding.onnx_fusion import fuse_graph
from timbre.embedding.text_input import TEXT_SEGMENT_TOKENS
from timbre.embedding.towers import AudioTower, TextTower

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
"""The graph; its weights go beside it in ``model.onnx.data`` (external data, so the text
tower's gigabyte is memory-mapped by onnxruntime rather than parsed into a protobuf)."""

RAW_FILE = "raw.onnx"
"""The exporter's graph before the fusions (:mod:`timbre.embedding.onnx_fusion`); deleted
once the fused graph is written."""

FUSIONS_FILE = "fusions.json"
"""Which fusions were applied, kept beside the graph (and copied into the manifest)."""

MAX_BATCH = 4096
"""Upper bound of the batch axis (segments or windows per call); far above any setting."""


def _masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(dim=1) / m.sum(dim=1)


class TextGraph(nn.Module):
    """What :meth:`TextTower._run` computes, as one module."""

    def __init__(self, tower: TextTower) -> None:
        super().__init__()
        self.model, self.proj = tower.model, tower.proj

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        vectors: torch.Tensor = self.proj(_masked_mean(hidden, attention_mask))
        return vectors


class AudioTowerGraph(nn.Module):
    """What :meth:`AudioTower._run` computes, as one module."""

    def __init__(self, tower: AudioTower) -> None:
        super().__init__()
        self.bert, self.proj = tower.bert, tower.proj

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(
            inputs_embeds=inputs_embeds, attention_mask=attention_mask
        ).last_hidden_state
        vectors: torch.Tensor = self.proj(_masked_mean(hidden, attention_mask))
        return vectors


class MertGraph(nn.Module):
    """What :meth:`MertEncoder._forward` computes, as one module."""

    def __init__(self, mert: MertEncoder) -> None:
        super().__init__()
        self.model = mert.model

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return layer_mean(self.model(windows, output_hidden_states=True).hidden_states)


def export_text(tower: TextTower, target: Path) -> Path:
    """Export the text tower into ``target`` (a folder); returns the model file."""
    batch = Dim("batch", min=1, max=MAX_BATCH)
    length = Dim("tokens", min=1, max=TEXT_SEGMENT_TOKENS)
    ids = torch.full((2, 7), 5, dtype=torch.long)  # any ids below the vocabulary size
    mask = torch.ones(2, 7, dtype=torch.long)
    shapes = {"input_ids": {0: batch, 1: length}, "attention_mask": {0: batch, 1: length}}
    return _export(TextGraph(tower), (ids, mask), shapes, target)


def export_audio_tower(tower: AudioTower, target: Path) -> Path:
    """Export the audio tower into ``target``; returns the model file."""
    batch = Dim("batch", min=1, max=MAX_BATCH)
    length = Dim("rows", min=1, max=tower.segment_rows)
    rows = torch.zeros(2, 7, tower.input_dim)
    mask = torch.ones(2, 7, dtype=torch.long)
    shapes = {"inputs_embeds": {0: batch, 1: length}, "attention_mask": {0: batch, 1: length}}
    return _export(AudioTowerGraph(tower), (rows, mask), shapes, target)


def export_mert(mert: MertEncoder, target: Path) -> Path:
    """Export MERT into ``target``; returns the model file.

    The length axis spans every window :func:`timbre.audio.windows.plan_windows` makes: from a
    click padded to ``MIN_CLIP_S`` to a full ``WINDOW_S`` window.
    """
    shortest = round(MIN_CLIP_S * mert.sample_rate)
    longest = round(WINDOW_S * mert.sample_rate)
    batch = Dim("batch", min=1, max=MAX_BATCH)
    samples = Dim("samples", min=shortest, max=longest)
    windows = torch.zeros(2, mert.sample_rate) + 0.01
    return _export(MertGraph(mert), (windows,), {"windows": {0: batch, 1: samples}}, target)


def _export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    shapes: dict[str, dict[int, Dim]],
    target: Path,
) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    raw = target / RAW_FILE
    with _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(
            module.eval(),
            args,
            dynamo=True,
            dynamic_shapes=shapes,
            output_names=["vectors"],
            optimize=True,
            verbose=False,
        )
    assert program is not None  # the dynamo exporter always returns its program
    program.save(str(raw), external_data=True)
    del program  # its copy of the weights is on disk now
    path = target / MODEL_FILE
    with _quiet_exporter():  # the rewriter logs every pass and skipped fold at INFO
        fusions = fuse_graph(raw, path)
    (target / FUSIONS_FILE).write_text(json.dumps(fusions, indent=1) + "\n", encoding="utf-8")
    for leftover in target.glob(f"{RAW_FILE}*"):
        leftover.unlink()
    return path


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter logs every op library it does not find (torchvision) and warns about
    internals; none of it concerns Timbre's graphs."""
    names = ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "onnx_ir")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
