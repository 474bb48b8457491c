"""Synthetic audio for tests: drum-like one-shots, tones and loops, written in any format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

FORMATS: dict[str, tuple[str, str]] = {
    # extension: (libsndfile format, subtype)
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_24"),
    "aiff": ("AIFF", "PCM_16"),
    "aif": ("AIFF", "PCM_24"),
    "ogg": ("OGG", "VORBIS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}


def seconds(duration_s: float, sr: int) -> np.ndarray:
    return np.arange(round(duration_s * sr)) / sr


def kick(sr: int, duration_s: float = 0.4, pitch_hz: float = 50.0) -> np.ndarray:
    t = seconds(duration_s, sr)
    sweep = pitch_hz + 120.0 * np.exp(-t * 35.0)
    phase = 2 * np.pi * np.cumsum(sweep) / sr
    return (0.9 * np.sin(phase) * np.exp(-t * 9.0)).astype(np.float32)


def hat(sr: int, duration_s: float = 0.12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = seconds(duration_s, sr)
    noise = rng.standard_normal(t.shape[0])
    bright = np.diff(noise, prepend=0.0)  # crude high-pass
    return (0.4 * bright * np.exp(-t * 45.0)).astype(np.float32)


def tone(sr: int, duration_s: float, freq_hz: float = 440.0, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq_hz * seconds(duration_s, sr))).astype(np.float32)


def chord_loop(sr: int, duration_s: float, bpm: float = 124.0, seed: int = 0) -> np.ndarray:
    """A pad chord with a kick on every beat: loop-like material."""
    rng = np.random.default_rng(seed)
    t = seconds(duration_s, sr)
    roots = rng.choice([110.0, 130.8, 146.8, 164.8])
    pad = sum(np.sin(2 * np.pi * roots * r * t) for r in (1.0, 1.26, 1.5)) / 6
    out = pad.astype(np.float32)
    beat = round(60.0 / bpm * sr)
    k = kick(sr)
    for start in range(0, out.shape[0], beat):
        seg = k[: out.shape[0] - start]
        out[start : start + seg.shape[0]] += seg
    return (out / max(1.0, float(np.abs(out).max()))).astype(np.float32)


def write(
    path: Path,
    samples: np.ndarray,
    sr: int,
    *,
    channels: int = 1,
    subtype: str | None = None,
) -> Path:
    """Write mono samples to ``path`` (format from its extension), duplicated to ``channels``."""
    fmt, default_subtype = FORMATS[path.suffix.lstrip(".").lower()]
    data = samples if channels == 1 else np.stack([samples] * channels, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, sr, format=fmt, subtype=subtype or default_subtype)
    return path


def crash(seconds: float, seed: int = 0, sr: int = 44100) -> np.ndarray:
    """A cymbal: bright noise that rings and fades over ``seconds``."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * sr)) / sr
    noise = np.diff(rng.standard_normal(t.size + 1))
    return (0.4 * noise * np.exp(-t * 6.0 / seconds)).astype(np.float32)


def strum(seconds: float, sr: int = 44100) -> np.ndarray:
    """Six strings plucked 15 ms apart, ringing out over ``seconds``."""
    t = np.arange(round(seconds * sr)) / sr
    out = np.zeros(t.size)
    for i, hz in enumerate((82.4, 110.0, 146.8, 196.0, 246.9, 329.6)):
        start = round(i * 0.015 * sr)
        tt = t[: t.size - start]
        tone = sum(np.sin(2 * np.pi * hz * k * tt) / k for k in range(1, 6))
        out[start:] += tone * np.exp(-tt * 7.0 / seconds)
    return (0.9 * out / np.abs(out).max()).astype(np.float32)
