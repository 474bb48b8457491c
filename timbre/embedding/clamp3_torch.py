"""MERT-v1-95M and the CLaMP3 (SAAS) towers in PyTorch, and their ONNX export graphs.

Loaded strictly from the official files: MERT into transformers' ``HubertModel`` (HuBERT-base
with group-norm features; no remote code), and the CLaMP3 checkpoint's ``audio_*`` and
``text_*`` sub-models, every dimension read from the tensors (docs/model-spec.md). Each
model's ``forward`` is also the ONNX graph it exports.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn
from torch.export import Dim
from transformers import (
    BertConfig,
    BertModel,
    HubertConfig,
    HubertModel,
    XLMRobertaConfig,
    XLMRobertaModel,
)

from timbre.audio.windows import MIN_CLIP_S, WINDOW_S
from timbre.embedding.clamp3_inputs import (
    TEXT_SEGMENT_TOKENS,
    TextTokens,
    batches_by_length,
    encode_segmented,
    pad_rows,
    with_zero_ends,
)
from timbre.embedding.files import MERT_WEIGHT_FILES, first_file
from timbre.embedding.onnx_export import MAX_BATCH, export_module
from timbre.errors import ModelFilesError

CPU = torch.device("cpu")
M = TypeVar("M", bound=nn.Module)

AUDIO_HEAD_DIM = 64
"""CLaMP3 builds its audio BERT with ``hidden_size // 64`` attention heads."""

_MERT_ARCH_FIELDS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "layer_norm_eps",
    "feat_extract_norm",
    "feat_extract_activation",
    "conv_dim",
    "conv_kernel",
    "conv_stride",
    "conv_bias",
    "num_conv_pos_embeddings",
    "num_conv_pos_embedding_groups",
    "do_stable_layer_norm",
    "feat_proj_layer_norm",
)
"""MERT config.json fields that define the architecture; the rest is irrelevant at inference."""
_MERT_UNSUPPORTED_IF_TRUE = ("feature_extractor_cqt", "deepnorm", "conv_pos_batch_norm")
"""MERT options that HubertModel cannot express; MERT-v1-95M has them all off."""


# -- checkpoint files -------------------------------------------------------------------------


def load_tensor_file(path: Path) -> Any:
    """A ``.bin``/``.pth`` (weights-only unpickling, memory-mapped so that only the tensors
    copied into a model are read) or a ``.safetensors`` file; ModelFilesError if unreadable."""
    if not path.is_file():
        raise ModelFilesError(f"checkpoint {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)  # a pre-1.6 pickle
    except (
        OSError,
        RuntimeError,
        EOFError,
        ValueError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
    ) as exc:
        raise ModelFilesError(
            f"{path} is not a readable checkpoint ({type(exc).__name__}: {exc}); download it again"
        ) from exc


def build_loaded(factory: Callable[[], M], state: Mapping[str, torch.Tensor], source: str) -> M:
    """Build a model without initialising its weights, then adopt the checkpoint's
    (memory-mapped) tensors as its parameters: no random init, no second copy."""
    from transformers.initialization import no_init_weights

    with no_init_weights():
        module = factory()
    load_strict(module, state, source, assign=True)
    return module.eval().requires_grad_(False)


def load_strict(
    module: nn.Module, state: Mapping[str, torch.Tensor], source: str, *, assign: bool = False
) -> None:
    """``load_state_dict(strict=True)`` with an error that names the file and the keys."""
    try:
        module.load_state_dict(state, strict=True, assign=assign)
    except RuntimeError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = " ".join(lines[:6]) + (" ..." if len(lines) > 6 else "")
        raise ModelFilesError(
            f"{source} does not match the expected architecture: {detail}"
        ) from exc


def shape_of(state: Mapping[str, torch.Tensor], key: str, source: str) -> tuple[int, ...]:
    try:
        return tuple(state[key].shape)
    except KeyError as exc:
        raise ModelFilesError(f"{source} has no tensor {key!r}; is it the right file?") from exc


def _masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(dim=1) / m.sum(dim=1)


def layer_mean(hidden: Sequence[torch.Tensor]) -> torch.Tensor:
    """Reference: ``torch.stack(hidden).mean(-2)`` -> ``[layers, B, H]``, then over layers."""
    return torch.stack([h.mean(dim=-2) for h in hidden]).mean(dim=0)


# -- MERT -------------------------------------------------------------------------------------


def hubert_config_from_mert(config: dict[str, Any], source: str) -> tuple[HubertConfig, int]:
    """Translate a MERT ``config.json`` into a ``HubertConfig`` and the model sample rate."""
    for name in _MERT_UNSUPPORTED_IF_TRUE:
        if config.get(name):
            raise ModelFilesError(f"{source}: {name}=true is a MERT variant Timbre cannot run")
    missing = [name for name in ("hidden_size", "sample_rate") if name not in config]
    if missing:
        raise ModelFilesError(f"{source} lacks {', '.join(missing)}; is it a MERT config?")
    fields = {name: config[name] for name in _MERT_ARCH_FIELDS if name in config}
    # mask_time_prob > 0 makes HubertModel hold `masked_spec_embed`, which the checkpoint has.
    hub = HubertConfig(**fields, mask_time_prob=0.05, layerdrop=0.0)
    hub._attn_implementation = "sdpa"
    return hub, int(config["sample_rate"])


class MertEncoder(nn.Module):
    """MERT over 5 s windows, each reduced to one vector: the mean over time of every hidden
    state, then the mean over layers. Windows of identical length share a batch (exact).
    ``forward`` (``windows [B, N] -> [B, H]``) is also the exported graph."""

    def __init__(self, model: HubertModel, sample_rate: int, device: torch.device) -> None:
        super().__init__()
        self.model = model
        self.sample_rate = sample_rate
        self.hidden_size = int(model.config.hidden_size)
        self.num_layers = int(model.config.num_hidden_layers)
        self.device = device

    @classmethod
    def load(cls, mert_dir: Path, device: torch.device) -> MertEncoder:
        """Raises: ModelFilesError: a file is missing or does not match the config."""
        config_path = mert_dir / "config.json"
        try:
            raw = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelFilesError(f"cannot read {config_path}: {exc}") from exc
        config, sample_rate = hubert_config_from_mert(raw, str(config_path))
        weights = first_file(mert_dir, MERT_WEIGHT_FILES)
        state = load_tensor_file(weights)
        if not isinstance(state, dict):
            raise ModelFilesError(f"{weights} does not hold a state dict")
        # torch's weight-norm load hook maps the legacy weight_g/weight_v names.
        model = build_loaded(lambda: HubertModel(config), state, str(weights))
        del state
        nn.Module.to(model, device)  # transformers types its own `to` for dtypes
        return cls(model, sample_rate, device)

    @torch.inference_mode()
    def window_vectors(self, windows: Sequence[np.ndarray], max_batch: int) -> np.ndarray:
        """``[len(windows), hidden_size]`` float32 for normalised 1-D windows of any lengths,
        at most ``max_batch`` per forward pass."""
        out = np.empty((len(windows), self.hidden_size), dtype=np.float32)
        for chunk in batches_by_length(windows, max_batch):
            batch = torch.from_numpy(np.stack([windows[i] for i in chunk])).to(self.device)
            out[chunk] = self(batch).cpu().numpy()
        return out

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return layer_mean(self.model(windows, output_hidden_states=True).hidden_states)

    def export(self, target: Path) -> Path:
        """The length axis spans every window :mod:`timbre.audio.windows` makes: from a click
        padded to ``MIN_CLIP_S`` to a full ``WINDOW_S`` window."""
        rate = self.sample_rate
        batch = Dim("batch", min=1, max=MAX_BATCH)
        samples = Dim("samples", min=round(MIN_CLIP_S * rate), max=round(WINDOW_S * rate))
        windows = torch.zeros(2, rate) + 0.01
        return export_module(self, (windows,), {"windows": {0: batch, 1: samples}}, target)


# -- the CLaMP3 towers ------------------------------------------------------------------------


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

    def part(self, prefix: str) -> dict[str, torch.Tensor]:
        sub = {k[len(prefix) :]: v for k, v in self.state.items() if k.startswith(prefix)}
        if not sub:
            raise ModelFilesError(f"{self.path} holds no '{prefix}*' tensors; is it the SAAS file?")
        return sub

    def embedding_dim(self) -> int:
        for key in ("audio_proj.weight", "text_proj.weight"):
            if key in self.state:
                return int(self.state[key].shape[0])
        raise ModelFilesError(f"{self.path} holds neither audio_proj nor text_proj")

    def projection(self, name: str, width: int) -> nn.Linear:
        """The ``<name>.`` linear layer, which must take ``width``-d input."""
        source = f"{self.path} ({name}.*)"
        state = self.part(f"{name}.")
        out_dim, in_dim = shape_of(state, "weight", source)
        if in_dim != width:
            raise ModelFilesError(f"{self.path}: {name} expects {in_dim}-d input")
        layer = nn.Linear(in_dim, out_dim)
        load_strict(layer, state, source)
        return layer.eval().requires_grad_(False)


class AudioTower(nn.Module):
    """CLaMP3 audio encoder: MERT window vectors -> one (un-normalised) vector per track.
    ``forward`` (``inputs_embeds [B, L, H], attention_mask [B, L] -> [B, dim]``: BERT, masked
    mean pool, projection) is also the exported graph."""

    def __init__(self, bert: BertModel, proj: nn.Linear, device: torch.device) -> None:
        super().__init__()
        self.bert = bert
        self.proj = proj
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
        proj = ckpt.projection("audio_proj", hidden)
        nn.Module.to(bert, device)  # transformers types its own `to` for dtypes
        return cls(bert, proj.to(device), device)

    @torch.inference_mode()
    def encode(self, features: Sequence[np.ndarray], max_batch: int) -> np.ndarray:
        """Global vectors for tracks given their MERT window vectors ``[n_win, input_dim]``."""
        items = with_zero_ends(features, self.input_dim)
        return encode_segmented(items, self.segment_rows, self._run, max_batch)

    def _run(self, segments: list[np.ndarray]) -> np.ndarray:
        rows, mask = pad_rows(segments, 0.0, np.float32)
        out = self(torch.from_numpy(rows).to(self.device), torch.from_numpy(mask).to(self.device))
        result: np.ndarray = out.cpu().numpy()
        return result

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(
            inputs_embeds=inputs_embeds, attention_mask=attention_mask
        ).last_hidden_state
        projected: torch.Tensor = self.proj(_masked_mean(hidden, attention_mask))
        return projected

    def export(self, target: Path) -> Path:
        batch = Dim("batch", min=1, max=MAX_BATCH)
        length = Dim("rows", min=1, max=self.segment_rows)
        rows = torch.zeros(2, 7, self.input_dim)
        mask = torch.ones(2, 7, dtype=torch.long)
        shapes = {"inputs_embeds": {0: batch, 1: length}, "attention_mask": {0: batch, 1: length}}
        return export_module(self, (rows, mask), shapes, target)


class TextTower(nn.Module):
    """CLaMP3 text encoder: text -> one (un-normalised) vector. ``forward`` (``input_ids,
    attention_mask [B, L] -> [B, dim]``: XLM-R, masked mean pool, projection) is also the
    exported graph."""

    def __init__(
        self, model: XLMRobertaModel, proj: nn.Linear, tokens: TextTokens, device: torch.device
    ) -> None:
        super().__init__()
        self.model = model
        self.proj = proj
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
        proj = ckpt.projection("text_proj", config.hidden_size)
        pad_id = config.pad_token_id if config.pad_token_id is not None else 1
        nn.Module.to(model, device)  # transformers types its own `to` for dtypes
        return cls(model, proj.to(device), TextTokens.load(xlmr_dir, int(pad_id)), device)

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], max_batch: int) -> np.ndarray:
        items = self.tokens.encode_ids(texts)
        return encode_segmented(items, TEXT_SEGMENT_TOKENS, self._run, max_batch)

    def _run(self, segments: list[np.ndarray]) -> np.ndarray:
        ids, mask = pad_rows(segments, self.tokens.pad_id, np.int64)
        out = self(torch.from_numpy(ids).to(self.device), torch.from_numpy(mask).to(self.device))
        result: np.ndarray = out.cpu().numpy()
        return result

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        projected: torch.Tensor = self.proj(_masked_mean(hidden, attention_mask))
        return projected

    def export(self, target: Path) -> Path:
        """Export :meth:`forward` into the folder ``target``; returns the model file."""
        batch = Dim("batch", min=1, max=MAX_BATCH)
        length = Dim("tokens", min=1, max=TEXT_SEGMENT_TOKENS)
        ids = torch.full((2, 7), 5, dtype=torch.long)  # any ids below the vocabulary size
        mask = torch.ones(2, 7, dtype=torch.long)
        shapes = {"input_ids": {0: batch, 1: length}, "attention_mask": {0: batch, 1: length}}
        return export_module(self, (ids, mask), shapes, target)
