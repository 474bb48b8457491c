"""The CLaMP3 (SAAS) audio and text towers, loaded from the official checkpoint unchanged.

The checkpoint is ``{'model': state_dict, ...}`` holding four sub-models; Timbre loads the
``audio_model.``/``audio_proj.`` and ``text_model.``/``text_proj.`` sub-dicts strictly and never
touches the symbolic branch. Every dimension is read from the tensors themselves.

Both towers share one rule for inputs longer than a segment (MODEL_SPEC.md sections 3-4):
cut into segments of ``seg`` rows, the last segment being the *last* ``seg`` rows (overlapping
its neighbour), encode each (masked mean pool of the last hidden state, then a linear
projection), and average the segment vectors weighted by ``[seg] * (n // seg) + [n % seg]``.

Segments are run at their true length instead of padded to ``seg``: attention is masked and
the pool ignores padding, so the result is the same while a one-shot's 3-row segment costs
3 rows of compute, not 128. Segments of many inputs share one padded, masked batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn
from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

from timbre.embedding.runtime import autocast, place
from timbre.embedding.weights import (
    build_loaded,
    load_strict,
    load_tensor_file,
    shape_of,
    strip_prefix,
)
from timbre.errors import ModelFilesError

TEXT_SEGMENT_TOKENS = 128
"""Tokens per text segment (CLaMP3 ``MAX_TEXT_LENGTH``; not recorded in any model file)."""

AUDIO_HEAD_DIM = 64
"""CLaMP3 builds its audio BERT with ``hidden_size // 64`` attention heads."""


@dataclass(frozen=True, slots=True)
class Segment:
    """Rows ``[start, stop)`` of one input, and its weight in the input's mean."""

    start: int
    stop: int
    weight: int


def plan_segments(n: int, seg: int) -> list[Segment]:
    """The reference segmentation of ``n`` rows into segments of at most ``seg`` rows.

    >>> [(s.start, s.stop, s.weight) for s in plan_segments(129, 128)]
    [(0, 128, 128), (1, 129, 1)]
    """
    if n <= 0 or seg <= 0:
        raise ValueError(f"cannot segment {n} rows into segments of {seg}")
    bounds = [(start, min(start + seg, n)) for start in range(0, n, seg)]
    bounds[-1] = (max(0, n - seg), n)
    weights = [seg] * (n // seg) + ([n % seg] if n % seg else [])
    return [Segment(a, b, w) for (a, b), w in zip(bounds, weights, strict=True)]


def _masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(dim=1) / m.sum(dim=1)


def _encode_segmented(
    items: Sequence[torch.Tensor],
    seg: int,
    run: Callable[[list[torch.Tensor]], torch.Tensor],
    max_batch: int,
) -> torch.Tensor:
    """Segment every item, run segments in length-sorted batches, combine per item."""
    pieces: list[tuple[int, int, torch.Tensor]] = []  # (item, weight, rows)
    for index, rows in enumerate(items):
        for s in plan_segments(int(rows.shape[0]), seg):
            pieces.append((index, s.weight, rows[s.start : s.stop]))
    order = sorted(range(len(pieces)), key=lambda i: int(pieces[i][2].shape[0]))
    encoded: list[torch.Tensor | None] = [None] * len(pieces)
    for start in range(0, len(order), max_batch):
        chunk = order[start : start + max_batch]
        vectors = run([pieces[i][2] for i in chunk])
        for j, i in enumerate(chunk):
            encoded[i] = vectors[j]
    dim = int(encoded[0].shape[-1]) if encoded else 0  # type: ignore[union-attr]
    sums = torch.zeros(len(items), dim, dtype=torch.float64)
    totals = torch.zeros(len(items), dtype=torch.float64)
    for (index, weight, _), vector in zip(pieces, encoded, strict=True):
        assert vector is not None
        sums[index] += weight * vector.double()
        totals[index] += weight
    return (sums / totals.unsqueeze(-1)).float()


class Clamp3Checkpoint:
    """The official CLaMP3 ``.pth``: ``{'model': state_dict, ...}``, memory-mapped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        ckpt = load_tensor_file(path)
        if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
            raise ModelFilesError(
                f"{path} is not a CLaMP3 checkpoint: expected a dict with a 'model' state dict"
            )
        self.state: dict[str, torch.Tensor] = ckpt["model"]
        self.epoch = ckpt.get("epoch")

    def part(self, prefix: str) -> dict[str, torch.Tensor]:
        sub = strip_prefix(self.state, prefix)
        if not sub:
            raise ModelFilesError(f"{self.path} holds no '{prefix}*' tensors; is it the SAAS file?")
        return sub

    def embedding_dim(self) -> int:
        for prefix in ("audio_proj.", "text_proj."):
            key = prefix + "weight"
            if key in self.state:
                return int(self.state[key].shape[0])
        raise ModelFilesError(f"{self.path} holds neither audio_proj nor text_proj")


def _linear_from(state: Mapping[str, torch.Tensor], source: str) -> nn.Linear:
    out_dim, in_dim = shape_of(state, "weight", source)
    layer = nn.Linear(in_dim, out_dim)
    load_strict(layer, state, source)
    return layer


class AudioTower:
    """CLaMP3 audio encoder: MERT window vectors -> one (un-normalised) vector per track."""

    def __init__(self, bert: BertModel, proj: nn.Linear, device: torch.device) -> None:
        self.bert = bert.eval().requires_grad_(False)
        self.proj = proj.eval().requires_grad_(False)
        self.device = device
        self.half: torch.dtype | None = None  # fp16/bf16 autocast once adopted; None = fp32
        self.input_dim = int(bert.config.hidden_size)
        self.segment_rows = int(bert.config.max_position_embeddings)
        self.dim = int(proj.out_features)

    @classmethod
    def load(cls, ckpt: Clamp3Checkpoint, device: torch.device) -> AudioTower:
        src = f"{ckpt.path} (audio_model.*)"
        state = ckpt.part("audio_model.")
        positions, hidden = shape_of(state, "embeddings.position_embeddings.weight", src)
        layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.layer."))
        config = BertConfig(
            vocab_size=shape_of(state, "embeddings.word_embeddings.weight", src)[0],
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=max(1, hidden // AUDIO_HEAD_DIM),
            intermediate_size=shape_of(state, "encoder.layer.0.intermediate.dense.weight", src)[0],
            max_position_embeddings=positions,
            type_vocab_size=shape_of(state, "embeddings.token_type_embeddings.weight", src)[0],
        )
        config._attn_implementation = "sdpa"
        pooler = "pooler.dense.weight" in state
        bert = build_loaded(lambda: BertModel(config, add_pooling_layer=pooler), state, src)
        proj = _linear_from(ckpt.part("audio_proj."), f"{ckpt.path} (audio_proj.*)")
        if proj.in_features != hidden:
            raise ModelFilesError(f"{ckpt.path}: audio_proj expects {proj.in_features}-d input")
        place(bert, device)
        return cls(bert, proj.to(device), device)

    @torch.inference_mode()
    def encode(self, features: Sequence[np.ndarray], max_batch: int) -> np.ndarray:
        """Global vectors for tracks given their MERT window vectors ``[n_win, input_dim]``.

        One zero vector is put before and after each track's windows, as in training.
        """
        zero = torch.zeros(1, self.input_dim)
        items = [
            torch.cat([zero, torch.from_numpy(np.asarray(f, np.float32)), zero]) for f in features
        ]
        return _encode_segmented(items, self.segment_rows, self._run, max_batch).numpy()

    def _run(self, segments: list[torch.Tensor]) -> torch.Tensor:
        longest = max(int(s.shape[0]) for s in segments)
        batch = torch.zeros(len(segments), longest, self.input_dim)
        mask = torch.zeros(len(segments), longest, dtype=torch.long)
        for i, s in enumerate(segments):
            batch[i, : s.shape[0]] = s
            mask[i, : s.shape[0]] = 1
        batch, mask = batch.to(self.device), mask.to(self.device)
        with autocast(self.device, self.half):
            hidden = self.bert(inputs_embeds=batch, attention_mask=mask).last_hidden_state
        return self.proj(_masked_mean(hidden.float(), mask)).cpu()


class TextTower:
    """CLaMP3 text encoder: text -> one (un-normalised) vector."""

    def __init__(
        self,
        model: XLMRobertaModel,
        proj: nn.Linear,
        tokenizer: Tokenizer,
        *,
        pad_id: int,
        separator: str,
        device: torch.device,
    ) -> None:
        self.model = model.eval().requires_grad_(False)
        self.proj = proj.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.pad_id = pad_id
        self.separator = separator
        self.device = device
        self.half: torch.dtype | None = None  # fp16/bf16 autocast once adopted; None = fp32
        self.dim = int(proj.out_features)

    @classmethod
    def load(cls, ckpt: Clamp3Checkpoint, xlmr_dir: Path, device: torch.device) -> TextTower:
        config = XLMRobertaConfig.from_json_file(str(xlmr_dir / "config.json"))
        config._attn_implementation = "sdpa"
        src = f"{ckpt.path} (text_model.*)"
        state = ckpt.part("text_model.")
        pooler = "pooler.dense.weight" in state
        model = build_loaded(lambda: XLMRobertaModel(config, add_pooling_layer=pooler), state, src)
        proj = _linear_from(ckpt.part("text_proj."), f"{ckpt.path} (text_proj.*)")
        if proj.in_features != config.hidden_size:
            raise ModelFilesError(f"{ckpt.path}: text_proj expects {proj.in_features}-d input")
        tokenizer = _load_tokenizer(xlmr_dir)
        pad_id = config.pad_token_id if config.pad_token_id is not None else 1
        place(model, device)
        return cls(
            model,
            proj.to(device),
            tokenizer,
            pad_id=int(pad_id),
            separator=_separator(xlmr_dir),
            device=device,
        )

    def token_ids(self, text: str) -> list[int]:
        """Token ids of a text prepared as the reference does.

        Lines are de-duplicated and empty ones dropped, then joined with the separator token
        (``</s>``), then tokenised with ``<s> ... </s>`` and no truncation. The reference
        de-duplicates through a Python ``set``, whose order changes from process to process
        for multi-line text; Timbre keeps the first occurrence order so a query always gives
        the same vector (single-line text is unaffected).
        """
        lines = [line for line in dict.fromkeys(text.split("\n")) if line]
        ids = self.tokenizer.encode(self.separator.join(lines)).ids
        return list(ids)

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], max_batch: int) -> np.ndarray:
        items = [torch.tensor(self.token_ids(t), dtype=torch.long) for t in texts]
        return _encode_segmented(items, TEXT_SEGMENT_TOKENS, self._run, max_batch).numpy()

    def _run(self, segments: list[torch.Tensor]) -> torch.Tensor:
        longest = max(int(s.shape[0]) for s in segments)
        ids = torch.full((len(segments), longest), self.pad_id, dtype=torch.long)
        mask = torch.zeros(len(segments), longest, dtype=torch.long)
        for i, s in enumerate(segments):
            ids[i, : s.shape[0]] = s
            mask[i, : s.shape[0]] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        with autocast(self.device, self.half):
            hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        return self.proj(_masked_mean(hidden.float(), mask)).cpu()


def _load_tokenizer(xlmr_dir: Path) -> Tokenizer:
    path = xlmr_dir / "tokenizer.json"
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # the tokenizers library raises bare Exceptions
        raise ModelFilesError(f"{path} is not a tokenizers file: {exc}") from exc
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def _separator(xlmr_dir: Path) -> str:
    path = xlmr_dir / "tokenizer_config.json"
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelFilesError(f"cannot read {path}: {exc}") from exc
    token = data.get("sep_token", "</s>")
    if isinstance(token, dict):
        token = token.get("content", "</s>")
    return str(token)
