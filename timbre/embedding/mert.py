"""MERT-v1-95M window features through transformers' ``HubertModel``.

MERT-v1-95M is architecturally HuBERT-base with group-norm features (see docs/model-spec.md):
its official folder (``config.json`` of model_type ``mert_model`` and ``pytorch_model.bin``
with legacy ``weight_g``/``weight_v`` names) loads strictly and bit-identically into
``HubertModel``, with no remote code. Each window yields one vector: the mean over time of
every hidden state (13 for the 12-layer model), then the mean over those layers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import HubertConfig, HubertModel

from timbre.embedding.files import MERT_WEIGHT_FILES
from timbre.embedding.runtime import place
from timbre.embedding.segments import batches_by_length
from timbre.embedding.weights import build_loaded, load_tensor_file
from timbre.errors import ModelFilesError

log = logging.getLogger(__name__)

# config.json fields that define the architecture; everything else (dropouts, CTC, auto_map...)
# is irrelevant at inference.
_ARCH_FIELDS = (
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
# MERT options that HubertModel cannot express; MERT-v1-95M has them all off.
_UNSUPPORTED_IF_TRUE = ("feature_extractor_cqt", "deepnorm", "conv_pos_batch_norm")


def hubert_config_from_mert(config: dict[str, Any], source: str) -> tuple[HubertConfig, int]:
    """Translate a MERT ``config.json`` into a ``HubertConfig`` and the model sample rate."""
    for name in _UNSUPPORTED_IF_TRUE:
        if config.get(name):
            raise ModelFilesError(f"{source}: {name}=true is a MERT variant Timbre cannot run")
    missing = [name for name in ("hidden_size", "sample_rate") if name not in config]
    if missing:
        raise ModelFilesError(f"{source} lacks {', '.join(missing)}; is it a MERT config?")
    fields = {name: config[name] for name in _ARCH_FIELDS if name in config}
    # mask_time_prob > 0 makes HubertModel hold `masked_spec_embed`, which the checkpoint has.
    hub = HubertConfig(**fields, mask_time_prob=0.05, layerdrop=0.0)
    hub._attn_implementation = "sdpa"
    return hub, int(config["sample_rate"])


class MertEncoder:
    """Runs MERT over 5 s windows and reduces each to one vector.

    Windows of identical length are batched together (exact: no padding, no mask, the
    reference's own computation); a shorter last window always runs alone.
    """

    def __init__(self, model: HubertModel, sample_rate: int, device: torch.device) -> None:
        self.model = model.eval().requires_grad_(False)
        self.sample_rate = sample_rate
        self.hidden_size = int(model.config.hidden_size)
        self.num_layers = int(model.config.num_hidden_layers)
        self.device = device

    @classmethod
    def load(cls, mert_dir: Path, device: torch.device) -> MertEncoder:
        """Load the official MERT folder (config.json + pytorch_model.bin or model.safetensors).

        Raises:
            ModelFilesError: a file is missing or does not match the config.
        """
        config_path = mert_dir / "config.json"
        try:
            raw = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelFilesError(f"cannot read {config_path}: {exc}") from exc
        config, sample_rate = hubert_config_from_mert(raw, str(config_path))
        weights = next((mert_dir / n for n in MERT_WEIGHT_FILES if (mert_dir / n).is_file()), None)
        if weights is None:
            raise ModelFilesError(f"{mert_dir} holds none of {', '.join(MERT_WEIGHT_FILES)}")
        state = load_tensor_file(weights)
        if not isinstance(state, dict):
            raise ModelFilesError(f"{weights} does not hold a state dict")
        # torch's weight-norm load hook maps the legacy weight_g/weight_v names onto the
        # parametrization of the positional convolution.
        model = build_loaded(lambda: HubertModel(config), state, str(weights))
        del state
        place(model, device)
        return cls(model, sample_rate, device)

    @torch.inference_mode()
    def window_vectors(self, windows: Sequence[np.ndarray], max_batch: int) -> np.ndarray:
        """One vector per window: mean over frames of each hidden state, then over layers.

        Args:
            windows: normalised 1-D float32 windows, any mix of lengths and tracks.
            max_batch: most windows per forward pass.

        Returns:
            ``[len(windows), hidden_size]`` float32, in input order.
        """
        out = np.empty((len(windows), self.hidden_size), dtype=np.float32)
        for chunk in batches_by_length(windows, max_batch):
            batch = torch.from_numpy(np.stack([windows[i] for i in chunk])).to(self.device)
            out[chunk] = self._forward(batch).cpu().numpy()
        return out

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        return layer_mean(self.model(batch, output_hidden_states=True).hidden_states)


def layer_mean(hidden: Sequence[torch.Tensor]) -> torch.Tensor:
    """Reference: ``torch.stack(hidden).mean(-2)`` -> ``[layers, B, H]``, then the mean over
    layers."""
    return torch.stack([h.float().mean(dim=-2) for h in hidden]).mean(dim=0)
