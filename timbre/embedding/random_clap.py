"""A CLAP checkpoint with random weights, in the layout of the unfused LAION ``larger_clap_*``
checkpoints on the hub (``config.json``, safetensors weights, the feature extractor's and the
RoBERTa tokenizer's files), for tests (``tiny``) and benchmarks (``full``) where no hub is
reachable. The CLaMP3 family's bundle (MERT, XLM-R, CLaMP3) is written by
:mod:`timbre.embedding.random_bundle`, whose special tokens the tokenizer here shares.
"""

from __future__ import annotations

import itertools
import string
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import ClapConfig, ClapModel

from timbre.embedding.family import Size
from timbre.embedding.random_bundle import SPECIAL_TOKEN_MAP, SPECIAL_TOKENS, write_json

CLAP_CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": {
        "text_config": {
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 64,
        },
        "audio_config": {
            "patch_embeds_hidden_size": 16,
            "hidden_size": 128,  # patch_embeds_hidden_size x 2^(stages - 1)
            "depths": [1, 1, 1, 1],
            "num_attention_heads": [1, 2, 2, 4],
        },
        "projection_dim": 48,
    },
    "full": {
        "text_config": {
            "vocab_size": 50265,
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
        },
        "audio_config": {
            "patch_embeds_hidden_size": 128,
            "hidden_size": 1024,
            "depths": [2, 2, 12, 2],
            "num_attention_heads": [4, 8, 16, 32],
        },
        "projection_dim": 512,
    },
}

HTSAT_TINY = {
    "patch_embeds_hidden_size": 96,
    "hidden_size": 768,
    "depths": [2, 2, 6, 2],
    "num_attention_heads": [4, 8, 16, 32],
}
"""The audio encoder of ``laion/clap-htsat-unfused`` (HTSAT-tiny, transformers'
``ClapAudioConfig`` defaults), for ``full`` bundles that measure the cheaper checkpoint."""

CLAP_PREPROCESSOR = {
    "chunk_length_s": 10,
    "feature_extractor_type": "ClapFeatureExtractor",
    "feature_size": 64,
    "fft_window_size": 1024,
    "frequency_max": 14000,
    "frequency_min": 50,
    "hop_length": 480,
    "max_length_s": 10,
    "n_fft": 1024,
    "nb_frequency_bins": 513,
    "nb_max_frames": 1000,
    "nb_max_samples": 480000,
    "padding": "repeatpad",
    "padding_side": "right",
    "padding_value": 0.0,
    "processor_class": "ClapProcessor",
    "return_attention_mask": False,
    "sampling_rate": 48000,
    "top_db": None,
    "truncation": "rand_trunc",
}
"""``preprocessor_config.json`` as the unfused LAION checkpoints publish it."""


def write_random_clap(
    target: Path, size: Size = "tiny", *, seed: int = 0, htsat_tiny: bool = False
) -> Path:
    """Write ``target/clap/`` (replaced file by file) and return it: ``tiny`` narrow towers,
    ``full`` the ``larger_clap_*`` dimensions (HTSAT-base, RoBERTa-base, 512-d), or with
    ``htsat_tiny`` those of ``clap-htsat-unfused`` (HTSAT-tiny audio encoder)."""
    folder = target / "clap"
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = roberta_tokenizer()
    spec = CLAP_CONFIGS[size]
    if htsat_tiny:
        spec = {**spec, "audio_config": HTSAT_TINY}
    text = {
        "vocab_size": tokenizer.get_vocab_size(),
        "max_position_embeddings": 514,  # RoBERTa: 512 tokens after its padding offset of 2
        "type_vocab_size": 1,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        **spec["text_config"],
    }
    config = ClapConfig(
        text_config=text,
        audio_config={"enable_fusion": False, **spec["audio_config"]},
        projection_dim=spec["projection_dim"],
    )
    torch.manual_seed(seed)
    model = ClapModel(config).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, as a trained checkpoint has
        bn = model.audio_model.audio_encoder.batch_norm
        bn.running_mean.uniform_(-60.0, -20.0)
        bn.running_var.uniform_(50.0, 400.0)
    model.save_pretrained(folder, safe_serialization=True)
    write_json(folder / "preprocessor_config.json", CLAP_PREPROCESSOR)
    _write_tokenizer(folder, tokenizer)
    return folder


def roberta_tokenizer() -> Tokenizer:
    """A byte-level BPE tokenizer laid out like RoBERTa's (<s>=0, <pad>=1, </s>=2, <unk>=3),
    trained on a fixed word list so that it is the same on every machine."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000,
        special_tokens=[*SPECIAL_TOKENS, "<mask>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer)
    tok.post_processor = processors.RobertaProcessing(
        ("</s>", 2), ("<s>", 0), trim_offsets=True, add_prefix_space=False
    )
    return tok


def _corpus() -> list[str]:
    words = (
        "kick snare hat hi-hat clap tom cymbal crash ride perc percussion bass sub pad lead "
        "pluck chord stab vocal vox fx riser impact sweep foley loop one shot drum synth "
        "piano guitar string brass noise warm dark bright punchy crispy dry wet reverb"
    )
    pairs = ["".join(p) for p in itertools.product(string.ascii_lowercase, repeat=2)]
    return [words] * 4 + [" ".join(pairs[i : i + 26]) for i in range(0, 676, 26)]


def _write_tokenizer(folder: Path, tok: Tokenizer) -> None:
    tok.save(str(folder / "tokenizer.json"))
    tok.model.save(str(folder))  # vocab.json and merges.txt, as the slow tokenizer reads them
    write_json(folder / "special_tokens_map.json", SPECIAL_TOKEN_MAP)
    write_json(
        folder / "tokenizer_config.json",
        {
            **SPECIAL_TOKEN_MAP,
            "add_prefix_space": False,
            "errors": "replace",
            "model_max_length": 512,
            "tokenizer_class": "RobertaTokenizer",
            "trim_offsets": True,
        },
    )
