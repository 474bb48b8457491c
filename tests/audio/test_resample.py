"""The numpy resampler against torchaudio's algorithm, written here with torch's conv1d."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from timbre.audio.resample import MAX_POLYPHASE_TAPS, resample


def torch_reference(x: np.ndarray, orig: int, new: int) -> np.ndarray:
    """torchaudio.functional's sinc_interp_hann resampler (lowpass width 6, rolloff 0.99),
    transcribed with torch ops: kernel from a float64 grid, float32 conv1d with stride."""
    g = math.gcd(orig, new)
    o, n = orig // g, new // g
    base = min(o, n) * 0.99
    width = math.ceil(6 * o / base)
    idx = torch.arange(-width, width + o, dtype=torch.float64)[None, None] / o
    t = torch.arange(0, -n, -1)[:, None, None] / n + idx
    t *= base
    t = t.clamp_(-6, 6)
    window = torch.cos(t * math.pi / 6 / 2) ** 2
    t *= math.pi
    kernels = torch.where(t == 0, torch.tensor(1.0).to(t), t.sin() / t)
    kernels = (kernels * window * (base / o)).to(torch.float32)
    wav = torch.from_numpy(x)[None]
    wav = torch.nn.functional.pad(wav, (width, width + o))
    out = torch.nn.functional.conv1d(wav[:, None], kernels, stride=o)
    out = out.transpose(1, 2).reshape(1, -1)
    target = math.ceil(n * x.shape[0] / o)
    return out[0, :target].numpy()


@pytest.mark.parametrize(
    ("orig", "new"),
    [(44100, 24000), (48000, 24000), (22050, 24000), (8000, 24000), (96000, 24000), (11025, 24000)],
)
def test_matches_torchaudio_algorithm(orig: int, new: int) -> None:
    rng = np.random.default_rng(orig)
    x = rng.uniform(-1, 1, orig // 2 + 17).astype(np.float32)
    ours = resample(x, orig, new)
    ref = torch_reference(x, orig, new)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 2e-6


def test_identity_when_rates_match() -> None:
    x = np.linspace(-1, 1, 1000, dtype=np.float32)
    np.testing.assert_array_equal(resample(x, 24000, 24000), x)


@pytest.mark.parametrize(("freq_hz", "max_rms"), [(15000, 0.01), (20000, 1e-3)])
def test_attenuates_content_above_the_new_nyquist(freq_hz: int, max_rms: float) -> None:
    """The reference filter (Hann, 6 zero crossings) gives ~-45 dB at 15 kHz, more above."""
    sr = 48000
    t = np.arange(sr) / sr
    alias = np.sin(2 * np.pi * freq_hz * t).astype(np.float32)  # input RMS 0.707
    out = resample(alias, sr, 24000)
    assert np.sqrt(np.mean(out[1000:-1000] ** 2)) < max_rms


def test_odd_rates_fall_back_without_exploding_memory() -> None:
    rate = 44101  # gcd with 24000 is 1: the exact filter bank would need gigabytes
    assert 24000 * (2 * 7 + rate) > MAX_POLYPHASE_TAPS
    t = np.arange(rate) / rate
    out = resample(np.sin(2 * np.pi * 500 * t).astype(np.float32), rate, 24000)
    assert out.shape[0] == math.ceil(rate * 24000 / rate)
    peak = np.argmax(np.abs(np.fft.rfft(out))) * 24000 / out.shape[0]
    assert abs(peak - 500) < 2
