"""Batching and reduced precision must not move vectors (beyond float32 reordering)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from ingest.job import options_from_settings
from tests.support.audio_factory import chord_loop, hat, kick, tone
from timbre.embedding.embedder import load_audio_embedder, load_text_embedder
from timbre.embedding.runtime import resolve_precision
from timbre.errors import ConfigError
from timbre.settings import Settings, load_settings

SR = 24000
CLIPS = [
    kick(SR),
    hat(SR),
    tone(SR, 2.2),
    chord_loop(SR, 5.0),
    chord_loop(SR, 16.0, seed=2),
    kick(SR, 0.4, 70.0),
]


def test_mert_batches_of_equal_windows_are_exact(any_audio_embedder) -> None:
    one = dataclasses.replace(any_audio_embedder, mert_batch_windows=1)
    four = dataclasses.replace(any_audio_embedder, mert_batch_windows=4)
    a, b = one.features(CLIPS), four.features(CLIPS)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-6, rtol=0)


def test_tower_batches_across_tracks(any_audio_embedder) -> None:
    feats = any_audio_embedder.features(CLIPS)
    single = dataclasses.replace(any_audio_embedder, tower_batch_segments=1).embed_features(feats)
    batched = dataclasses.replace(any_audio_embedder, tower_batch_segments=32).embed_features(feats)
    assert np.abs(single - batched).max() < 1e-6


def test_many_tracks_at_once_equal_one_at_a_time(any_audio_embedder) -> None:
    together = any_audio_embedder.embed(CLIPS)
    alone = np.stack([any_audio_embedder.embed([c])[0] for c in CLIPS])
    assert np.abs(together - alone).max() < 1e-6
    # and the vectors are not all the same: distinct sounds, distinct vectors
    assert np.abs(together[0] - together[1]).max() > 1e-3


def _quantized(module: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in module.modules())


def test_int8_text_is_refused_when_it_disagrees(settings: Settings) -> None:
    strict = settings.models.model_copy(
        update={"text_precision": "int8", "precision_min_cosine": 1.0}
    )
    embedder = load_text_embedder(strict)
    measured = embedder.precision["text_int8_min_cosine"]
    assert measured < 1.0
    assert not _quantized(embedder.tower.model)  # stayed on fp32


def test_int8_text_is_adopted_when_it_agrees(settings: Settings, text_embedder) -> None:
    lenient = settings.models.model_copy(
        update={"text_precision": "int8", "precision_min_cosine": 0.5}
    )
    embedder = load_text_embedder(lenient)
    assert _quantized(embedder.tower.model)
    cos = float(embedder.embed(["warm pad"])[0] @ text_embedder.embed(["warm pad"])[0])
    assert cos >= embedder.precision["text_int8_min_cosine"] - 1e-6


def test_int8_audio_follows_the_same_gate(settings: Settings) -> None:
    strict = settings.models.model_copy(
        update={"audio_precision": "int8", "precision_min_cosine": 1.0}
    )
    embedder = load_audio_embedder(strict)
    assert embedder.precision["audio_int8_min_cosine"] < 1.0
    assert not _quantized(embedder.mert.model) and not _quantized(embedder.tower.bert)


def test_bf16_audio_runs_in_bf16_when_it_agrees(settings: Settings, audio_embedder) -> None:
    lenient = settings.models.model_copy(
        update={"audio_precision": "bf16", "precision_min_cosine": 0.5}
    )
    embedder = load_audio_embedder(lenient)
    assert embedder.running == "bf16"
    assert embedder.mert.half is torch.bfloat16 and embedder.tower.half is torch.bfloat16
    half, full = embedder.embed(CLIPS), audio_embedder.embed(CLIPS)
    cosines = (half * full).sum(axis=1)
    assert cosines.min() >= embedder.precision["audio_bf16_min_cosine"] - 0.01
    assert np.abs(half - full).max() > 1e-6  # it really ran in 16 bits, not fp32


def test_bf16_text_is_refused_when_it_disagrees(settings: Settings) -> None:
    strict = settings.models.model_copy(
        update={"text_precision": "bf16", "precision_min_cosine": 1.0}
    )
    embedder = load_text_embedder(strict)
    assert embedder.precision["text_bf16_min_cosine"] < 1.0
    assert embedder.running == "fp32" and embedder.tower.half is None


def test_precision_per_device() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision("auto", cpu, "p") == "fp32"
    assert resolve_precision("auto", cuda, "p") == "fp16"
    assert resolve_precision("bf16", cpu, "p") == resolve_precision("bf16", cuda, "p") == "bf16"
    with pytest.raises(ConfigError, match="p is int8, which runs on the CPU only"):
        resolve_precision("int8", cuda, "p")
    with pytest.raises(ConfigError, match="p is fp16, which has no fast CPU kernels"):
        resolve_precision("fp16", cpu, "p")


def test_batch_sizes_per_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMBRE_INGEST__BATCH_FILES__CPU", "5")
    monkeypatch.setenv("TIMBRE_MODELS__DEVICE", "cpu")
    settings = load_settings()
    assert settings.ingest.batch_files.on("cpu") == 5
    assert settings.ingest.batch_files.on("cuda") == 128  # from default.yaml
    assert options_from_settings(settings, (Path(),)).batch_files == 5
    monkeypatch.setenv("TIMBRE_MODELS__MERT_BATCH_WINDOWS", "3")  # one number: both devices
    windows = load_settings().models.mert_batch_windows
    assert (windows.cpu, windows.cuda) == (3, 3)
