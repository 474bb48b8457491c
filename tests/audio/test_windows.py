"""Whole-track normalisation, the 5 s windows, the 1 s tail rule and the short-clip policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import Wav2Vec2FeatureExtractor

from timbre.audio.windows import normalize, plan_windows, prepare_windows
from timbre.embedding.clamp3_inputs import plan_segments

SR = 24000


def test_normalisation_equals_wav2vec2_feature_extractor() -> None:
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal(3 * SR) + 0.05).astype(np.float32)
    fe = Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=SR,
        padding_value=0.0,
        return_attention_mask=True,
        do_normalize=True,
    )
    ref = fe(
        torch.from_numpy(x)[None], sampling_rate=SR, padding=True, return_tensors="pt"
    ).input_values[0, 0]
    np.testing.assert_array_equal(normalize(x), ref.numpy())


def test_silence_normalises_to_zeros_not_nan() -> None:
    out = normalize(np.zeros(SR, np.float32))
    assert np.isfinite(out).all() and not out.any()


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0.05, [(0, 2400)]),  # click: padded to 0.1 s
        (0.5, [(0, 12000)]),  # one-shot: whole, at its own length
        (0.999, [(0, 23976)]),
        (1.0, [(0, 24000)]),
        (5.0, [(0, 120000)]),
        (5.99, [(0, 120000)]),  # 0.99 s tail dropped
        (6.0, [(0, 120000), (120000, 144000)]),  # 1 s tail kept
        (10.0, [(0, 120000), (120000, 240000)]),
    ],
)
def test_window_plan(seconds: float, expected: list[tuple[int, int]]) -> None:
    plan = plan_windows(round(seconds * SR), SR)
    assert list(plan.bounds) == expected


def test_windows_are_views_of_one_normalised_track() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal(11 * SR).astype(np.float32)
    wins = prepare_windows(x, SR)
    assert [w.shape[0] for w in wins] == [120000, 120000, 24000]
    np.testing.assert_array_equal(np.concatenate(wins), normalize(x))


def test_short_clip_is_padded_before_normalisation() -> None:
    x = np.ones(100, np.float32)
    (win,) = prepare_windows(x, SR)
    assert win.shape[0] == 2400
    np.testing.assert_allclose(win, normalize(np.concatenate([x, np.zeros(2300, np.float32)])))


def test_empty_track_is_an_error() -> None:
    with pytest.raises(ValueError):
        plan_windows(0, SR)


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (3, [(0, 3, 3)]),
        (128, [(0, 128, 128)]),
        (129, [(0, 128, 128), (1, 129, 1)]),
        (256, [(0, 128, 128), (128, 256, 128)]),
        (300, [(0, 128, 128), (128, 256, 128), (172, 300, 44)]),
    ],
)
def test_segment_plan(n: int, expected: list[tuple[int, int, int]]) -> None:
    assert [(s.start, s.stop, s.weight) for s in plan_segments(n, 128)] == expected
