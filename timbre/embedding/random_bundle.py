"""Complete model bundles with random weights, in exactly the official file formats.

For tests (``tiny``) and benchmarks (``full``: the official dimensions, so the same compute),
where no model hub is reachable. ``timbre-models.json`` says ``random_weights: true``, and
every process that loads the bundle warns. This module writes the CLaMP3 family's bundle
(MERT, XLM-R, CLaMP3); the CLAP family's checkpoint is :mod:`timbre.embedding.random_clap`'s.
"""

from __future__ import annotations

import itertools
import json
import string
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tokenizers import (
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
)
from torch import nn
from transformers import (
    BertConfig,
    BertModel,
    HubertConfig,
    HubertModel,
    XLMRobertaConfig,
    XLMRobertaModel,
)

from timbre.embedding.family import Size
from timbre.embedding.files import write_manifest

CLAMP3_SAAS_FILENAME = (
    "weights_clamp3_saas_h_size_768_t_model_FacebookAI_xlm-roberta-base_t_length_128_a_size_768_"
    "a_layers_12_a_length_128_s_size_768_s_layers_12_p_size_64_p_length_512.pth"
)


@dataclass(frozen=True)
class Dims:
    mert_hidden: int
    mert_layers: int
    mert_heads: int
    mert_ffn: int
    mert_conv: int
    text_hidden: int
    text_layers: int
    text_heads: int
    text_ffn: int
    vocab: int
    audio_layers: int
    joint: int
    symbolic_hidden: int
    symbolic_layers: int


DIMS: dict[str, Dims] = {
    # The audio tower's width must equal MERT's; CLaMP3 gives it hidden // 64 heads.
    "tiny": Dims(128, 2, 2, 256, 32, 64, 2, 2, 128, 1000, 2, 48, 32, 1),
    "full": Dims(768, 12, 12, 3072, 512, 768, 12, 12, 3072, 250002, 12, 768, 768, 12),
}

PATCH_SIZE = 64  # CLaMP3 symbolic patch: 64 characters, one-hot over 128
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>")
"""XLM-R's and RoBERTa's ids 0..3 (XLM-R's <mask> is its last id, RoBERTa's is 4)."""
SPECIAL_TOKEN_MAP = {
    "bos_token": "<s>",
    "cls_token": "<s>",
    "eos_token": "</s>",
    "mask_token": "<mask>",
    "pad_token": "<pad>",
    "sep_token": "</s>",
    "unk_token": "<unk>",
}


def write_random_bundle(
    target: Path, size: Size = "tiny", *, seed: int = 0, safetensors: bool = False
) -> Path:
    """Write ``mert/``, ``xlmr/``, ``clamp3/`` and ``timbre-models.json`` under ``target``."""
    dims = DIMS[size]
    torch.manual_seed(seed)
    target.mkdir(parents=True, exist_ok=True)
    _write_mert(target / "mert", dims, safetensors)
    _write_xlmr(target / "xlmr", dims)
    _write_clamp3(target / "clamp3", dims)
    repo = f"timbre/random-{size}"
    revision = f"seed-{seed}"
    write_manifest(
        target,
        random_weights=True,
        size=size,
        seed=seed,
        sources={
            part: {"repo": f"{repo}-{part}", "revision": revision, "files": {}}
            for part in ("mert", "xlmr", "clamp3")
        },
    )
    return target


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` as the hub's JSON files are laid out (indented, final newline)."""
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _write_mert(folder: Path, d: Dims, safetensors: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    conv = [d.mert_conv] * 7
    config = {
        "architectures": ["MERTModel"],
        "auto_map": {
            "AutoConfig": "configuration_MERT.MERTConfig",
            "AutoModel": "modeling_MERT.MERTModel",
        },
        "model_type": "mert_model",
        "hidden_size": d.mert_hidden,
        "num_hidden_layers": d.mert_layers,
        "num_attention_heads": d.mert_heads,
        "intermediate_size": d.mert_ffn,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-5,
        "feat_extract_norm": "group",
        "feat_extract_activation": "gelu",
        "conv_dim": conv,
        "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
        "conv_stride": [5, 2, 2, 2, 2, 2, 2],
        "conv_bias": False,
        "num_conv_pos_embeddings": 128,
        "num_conv_pos_embedding_groups": 16,
        "do_stable_layer_norm": False,
        "feat_proj_layer_norm": True,
        "feature_extractor_cqt": False,
        "feature_extractor_cqt_bins": 336,
        "deepnorm": False,
        "attention_relax": -1.0,
        "sample_rate": 24000,
        "mask_time_prob": 0.05,
        "mask_feature_prob": 0.0,
        "apply_spec_augment": True,
        "attention_dropout": 0.1,
        "hidden_dropout": 0.1,
        "activation_dropout": 0.0,
        "feat_proj_dropout": 0.1,
        "final_dropout": 0.1,
        "layerdrop": 0.05,
        "torch_dtype": "float32",
    }
    write_json(folder / "config.json", config)
    write_json(
        folder / "preprocessor_config.json",
        {
            "do_normalize": True,
            "feature_extractor_type": "Wav2Vec2FeatureExtractor",
            "feature_size": 1,
            "padding_side": "right",
            "padding_value": 0,
            "return_attention_mask": True,
            "sampling_rate": 24000,
        },
    )
    keys: dict[str, Any] = {k: config[k] for k in config if k in HubertConfig().to_dict()}
    model = HubertModel(HubertConfig(**keys))
    state = OrderedDict()
    for key, value in model.state_dict().items():
        # The official file predates torch's parametrized weight norm.
        legacy = key.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v"
        )
        state[legacy] = value.contiguous()
    if safetensors:
        from safetensors.torch import save_file

        save_file(dict(state), str(folder / "model.safetensors"), metadata={"format": "pt"})
    else:
        torch.save(state, folder / "pytorch_model.bin")


def _xlmr_config(d: Dims) -> dict[str, Any]:
    return {
        "architectures": ["XLMRobertaForMaskedLM"],
        "attention_probs_dropout_prob": 0.1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": d.text_hidden,
        "initializer_range": 0.02,
        "intermediate_size": d.text_ffn,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": 514,
        "model_type": "xlm-roberta",
        "num_attention_heads": d.text_heads,
        "num_hidden_layers": d.text_layers,
        "output_past": True,
        "pad_token_id": 1,
        "position_embedding_type": "absolute",
        "type_vocab_size": 1,
        "use_cache": True,
        "vocab_size": d.vocab,
    }


def _pieces(count: int) -> list[tuple[str, float]]:
    """Synthetic sentencepiece-style pieces: characters, then longer letter runs, with and
    without the word-start marker; longer pieces score higher so words split into few tokens."""
    alphabet = string.ascii_lowercase
    singles = list(
        alphabet + string.ascii_uppercase + string.digits + string.punctuation + "éèàüöäñçß"
    )
    out: list[str] = ["▁"] + [f"▁{c}" for c in singles] + singles
    for length in itertools.count(2):
        if len(out) >= count:
            break
        for combo in itertools.product(alphabet, repeat=length):
            piece = "".join(combo)
            out.extend((f"▁{piece}", piece))
            if len(out) >= count:
                break
    return [(p, -12.0 + len(p)) for p in out[:count]]


def xlmr_tokenizer(vocab_size: int) -> Tokenizer:
    """A Unigram tokenizer laid out like XLM-R's: <s>=0, <pad>=1, </s>=2, <unk>=3, <mask>=last."""
    vocab = [(t, 0.0) for t in SPECIAL_TOKENS]
    vocab += _pieces(vocab_size - len(SPECIAL_TOKENS) - 1)
    vocab.append(("<mask>", 0.0))
    tok = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    tok.add_special_tokens([*SPECIAL_TOKENS, "<mask>"])
    return tok


def _write_xlmr(folder: Path, d: Dims) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "config.json", _xlmr_config(d))
    xlmr_tokenizer(d.vocab).save(str(folder / "tokenizer.json"))
    write_json(
        folder / "tokenizer_config.json",
        {**SPECIAL_TOKEN_MAP, "model_max_length": 512, "tokenizer_class": "XLMRobertaTokenizer"},
    )


def _bert(hidden: int, layers: int, positions: int) -> BertModel:
    """A BERT as CLaMP3 builds its audio and symbolic encoders (``hidden // 64`` heads)."""
    config = BertConfig(
        vocab_size=1,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 64),
        intermediate_size=hidden * 4,
        max_position_embeddings=positions,
    )
    return BertModel(config)


def _write_clamp3(folder: Path, d: Dims) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    text = XLMRobertaModel(XLMRobertaConfig(**_xlmr_config(d)), add_pooling_layer=True)
    audio = _bert(d.mert_hidden, d.audio_layers, positions=128)
    symbolic = _bert(d.symbolic_hidden, d.symbolic_layers, positions=512)
    parts: list[tuple[str, nn.Module]] = [
        ("text_model.", text),
        ("text_proj.", nn.Linear(d.text_hidden, d.joint)),
        ("symbolic_model.patch_embedding.", nn.Linear(PATCH_SIZE * 128, d.symbolic_hidden)),
        ("symbolic_model.base.", symbolic),
        ("symbolic_proj.", nn.Linear(d.symbolic_hidden, d.joint)),
        ("audio_model.", audio),
        ("audio_proj.", nn.Linear(d.mert_hidden, d.joint)),
    ]
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    for prefix, module in parts:
        for key, value in module.state_dict().items():
            state[prefix + key] = value.contiguous()
    checkpoint = {
        "model": state,
        "epoch": 10,
        "best_epoch": 10,
        "min_eval_loss": float("nan"),
        "modality": "audio",
    }
    torch.save(checkpoint, folder / CLAMP3_SAAS_FILENAME)
