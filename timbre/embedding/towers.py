"""The CLaMP3 (SAAS) audio and text towers, loaded from the official checkpoint unchanged.

The checkpoint is ``{'model': state_dict, ...}`` holding four sub-models; Timbre loads the
``audio_model.``/``audio_proj.`` and ``text_model.``/``text_proj.`` sub-dicts strictly and never
touches the symbolic branch. Every dimension is read from the tensors themselves.

Both towers share one rule for inputs longer than a segment (docs/model-spec.md, clamp3), in
:mod:`timbre.embedding.segments`: each segment is encoded (masked mean pool of the last hidden
state, then a linear projection) and the segment vectors are averaged by length. Segments run
at their true length instead of padded to ``seg``, so a one-shot's 3-row segment costs 3 rows
of compute, not 128. The ONNX Runtime towers (:mod:`timbre.embedding.ort_runtime`) share the
same rules and this module's graphs (:mod:`timbre.embedding.onnx_export`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn
from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

from timbre.embedding.runtime import place
from timbre.embedding.segments import encode_segmented, pad_rows, plan_segments
from timbre.embedding.text_input import TEXT_SEGMENT_TOKENS, TextTokens
from timbre.embedding.weights import (
    build_loaded,
    load_strict,
    load_tensor_file,
    shape_of,
    strip_prefix,
)
from timbre.errors import ModelFilesError

AUDIO_HEAD_DIM = 64
"""CLaMP3 builds its audio BERT with ``hidden_size // 64`` attention heads."""

__all__ = ["TEXT_SEGMENT_TOKENS", "AudioTower", "Clamp3Checkpoint", "TextTower", "plan_segments"]


def _masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(dim=1) / m.sum(dim=1)


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
        zero = np.zeros((1, self.input_dim), np.float32)
        items = [np.concatenate([zero, np.asarray(f, np.float32), zero]) for f in features]
        return encode_segmented(items, self.segment_rows, self._run, max_batch)

    def _run(self, segments: list[np.ndarray]) -> np.ndarray:
        rows, mask_np = pad_rows(segments, 0.0, np.float32)
        batch = torch.from_numpy(rows).to(self.device)
        mask = torch.from_numpy(mask_np).to(self.device)
        hidden = self.bert(inputs_embeds=batch, attention_mask=mask).last_hidden_state
        return self.proj(_masked_mean(hidden.float(), mask)).cpu().numpy()


class TextTower:
    """CLaMP3 text encoder: text -> one (un-normalised) vector."""

    def __init__(
        self, model: XLMRobertaModel, proj: nn.Linear, tokens: TextTokens, device: torch.device
    ) -> None:
        self.model = model.eval().requires_grad_(False)
        self.proj = proj.eval().requires_grad_(False)
        self.tokens = tokens
        self.device = device
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
        pad_id = config.pad_token_id if config.pad_token_id is not None else 1
        place(model, device)
        return cls(model, proj.to(device), TextTokens.load(xlmr_dir, int(pad_id)), device)

    @property
    def tokenizer(self) -> Tokenizer:
        return self.tokens.tokenizer

    def token_ids(self, text: str) -> list[int]:
        """Token ids of a text prepared as the reference does (:meth:`TextTokens.token_ids`)."""
        return self.tokens.token_ids(text)

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], max_batch: int) -> np.ndarray:
        items = [np.asarray(self.token_ids(t), dtype=np.int64) for t in texts]
        return encode_segmented(items, TEXT_SEGMENT_TOKENS, self._run, max_batch)

    def _run(self, segments: list[np.ndarray]) -> np.ndarray:
        ids_np, mask_np = pad_rows(segments, self.tokens.pad_id, np.int64)
        ids = torch.from_numpy(ids_np).to(self.device)
        mask = torch.from_numpy(mask_np).to(self.device)
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        return self.proj(_masked_mean(hidden.float(), mask)).cpu().numpy()
