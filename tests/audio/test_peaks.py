"""Waveform peaks: bucketing, scale, short clips, and the payload's base64 form."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from timbre.audio.peaks import PEAK_BUCKETS, compute_peaks, decode_peaks, encode_peaks


def test_each_bucket_holds_the_loudest_sample_of_its_slice() -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(-0.5, 0.5, 1000).astype(np.float32)
    x[123] = -0.9  # slice 24 of 200 (samples 120..124)
    peaks = compute_peaks(x)
    assert peaks.shape == (PEAK_BUCKETS,) and peaks.dtype == np.uint8
    expected = [np.abs(x[i * 5 : (i + 1) * 5]).max() for i in range(PEAK_BUCKETS)]
    np.testing.assert_array_equal(peaks, np.round(np.array(expected) * 255).astype(np.uint8))
    assert peaks[24] == round(0.9 * 255)


def test_a_decaying_hit_draws_a_decaying_envelope() -> None:
    t = np.arange(24000) / 24000
    kick = np.sin(2 * np.pi * 60 * t) * np.exp(-t * 8)
    peaks = compute_peaks(kick, buckets=10).astype(int)
    assert all(a >= b for a, b in itertools.pairwise(peaks))
    assert peaks[0] > 200 and peaks[-1] < 10


def test_full_scale_is_255_and_louder_clips() -> None:
    assert compute_peaks(np.array([2.0, -1.0, 0.0, 0.5]), buckets=4).tolist() == [255, 255, 0, 128]


def test_a_clip_shorter_than_the_buckets_spreads_its_samples() -> None:
    peaks = compute_peaks(np.array([0.0, 1.0]), buckets=4)
    assert peaks.tolist() == [0, 0, 255, 255]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="need samples"):
        compute_peaks(np.zeros(0))
    with pytest.raises(ValueError, match="NaN"):
        compute_peaks(np.array([0.1, np.nan]))
    with pytest.raises(ValueError, match="base64"):
        decode_peaks("not base64!")


def test_base64_round_trip_is_lossless_and_small() -> None:
    peaks = compute_peaks(np.random.default_rng(0).uniform(-1, 1, 48000))
    text = encode_peaks(peaks)
    assert len(text) <= 272 and text.isascii()
    np.testing.assert_array_equal(decode_peaks(text), peaks)
