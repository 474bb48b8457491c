"""Batching must not move vectors (beyond float32 reordering)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from ingest.job import options_from_settings
from tests.support.audio_factory import chord_loop, hat, kick, tone
from timbre.settings import load_settings

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
