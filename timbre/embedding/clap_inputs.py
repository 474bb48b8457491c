"""The clap family's inputs, numpy and ``tokenizers`` only: 10 s windows and their log-mels
(as transformers' ``ClapFeatureExtractor`` computes them for an unfused checkpoint), and
RoBERTa token ids truncated at the position limit. docs/model-spec.md (clap) holds the
computation; where the reference is random or silent, :class:`ClapPolicy` fixes a rule.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from tokenizers import Tokenizer

from timbre.errors import ModelFilesError

MEL_FLOOR = 1e-10
"""Power below which a mel band is clamped before the logarithm (the reference's floor)."""

PIPELINE_BASE = "clap-hf5"
"""The reference: transformers' ``ClapFeatureExtractor`` + ``ClapModel`` (unfused), v5."""


@dataclass(frozen=True)
class ClapPolicy:
    """Timbre's fixed choices where the reference leaves one open (recorded in
    :func:`pipeline_version`)."""

    # repeatpad (tiled int(window / n) times, then zero-padded: the reference's and the
    # training default) or pad (zero-padded once)
    short_clip: Literal["repeatpad", "pad"] = "repeatpad"
    # mean (evenly spaced full windows, normalised embeddings averaged) or first; the
    # reference crops at random
    long_clip: Literal["mean", "first"] = "mean"
    max_windows: int = 18  # most windows under mean


def pipeline_version(policy: ClapPolicy) -> str:
    """E.g. ``clap-hf5/repeatpad/mean18-v1/downmix/text-trunc-v1``."""
    long = f"mean{policy.max_windows}" if policy.long_clip == "mean" else "first"
    return f"{PIPELINE_BASE}/{policy.short_clip}/{long}-v1/downmix/text-trunc-v1"


@dataclass(frozen=True)
class FrontEnd:
    """Window plan and log-mel of one checkpoint (read from its ``preprocessor_config.json``)."""

    sample_rate: int
    window_samples: int
    n_fft: int
    hop: int
    mel_filters: np.ndarray  # [n_fft // 2 + 1, bands], float64
    policy: ClapPolicy

    @classmethod
    def load(cls, folder: Path, policy: ClapPolicy) -> FrontEnd:
        """Raises: ModelFilesError: the file is missing, unreadable or asks for fusion."""
        path = folder / "preprocessor_config.json"
        try:
            cfg = json.loads(path.read_text(encoding="utf-8"))
            rate = int(cfg["sampling_rate"])
            n_fft = int(cfg["fft_window_size"])
            hop = int(cfg["hop_length"])
            bands = int(cfg["feature_size"])
            window = int(cfg.get("nb_max_samples") or int(cfg["max_length_s"]) * rate)
            fmin, fmax = float(cfg["frequency_min"]), float(cfg["frequency_max"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelFilesError(f"{path} is unreadable or incomplete ({exc})") from exc
        filters = slaney_mel_filters(n_fft // 2 + 1, bands, fmin, fmax, rate)
        return cls(rate, window, n_fft, hop, filters, policy)

    def windows(self, wave: np.ndarray) -> list[np.ndarray]:
        """The full-length windows a clip is embedded through (float64, ``window_samples``)."""
        x = np.asarray(wave, dtype=np.float64)
        n, w = x.shape[0], self.window_samples
        if n == 0:
            raise ValueError("cannot embed an empty clip")
        if n <= w:
            if n < w and self.policy.short_clip == "repeatpad":
                x = np.tile(x, w // n)
            return [np.pad(x, (0, w - x.shape[0]))]
        if self.policy.long_clip == "first":
            return [x[:w]]
        count = min(math.ceil(n / w), self.policy.max_windows)
        # Evenly spaced, first at 0 and last ending at the end: every window is a full 10 s
        # of the clip (as each of the reference's random crops is), none padded.
        starts = np.linspace(0, n - w, count).round().astype(np.int64)
        return [x[s : s + w] for s in starts]

    def log_mel(self, window: np.ndarray) -> np.ndarray:
        """``[frames, bands]`` float32 log-mel (dB) of one window."""
        half = self.n_fft // 2
        padded = np.pad(window, (half, half), mode="reflect")
        frames = np.lib.stride_tricks.sliding_window_view(padded, self.n_fft)[:: self.hop]
        spectrum = np.fft.rfft(frames * _hann(self.n_fft), axis=-1)
        # The reference holds the spectrum in single precision before squaring.
        power = np.abs(spectrum.astype(np.complex64), dtype=np.float64) ** 2
        mel = np.maximum(MEL_FLOOR, power @ self.mel_filters)
        decibels: np.ndarray = 10.0 * np.log10(mel)
        return decibels.astype(np.float32)


def _hann(length: int) -> np.ndarray:
    """Periodic Hann window (the first ``length`` points of a ``length + 1`` symmetric one)."""
    return np.hanning(length + 1)[:-1]


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear to 1 kHz (3 bands per 200 Hz), logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = 3.0 * hz / 200.0
    log_step = math.log(6.4) / 27.0
    above = hz >= 1000.0
    mel[above] = 15.0 + np.log(hz[above] / 1000.0) / log_step
    return mel


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    hz = 200.0 * mel / 3.0
    log_step = math.log(6.4) / 27.0
    above = mel >= 15.0
    hz[above] = 1000.0 * np.exp(log_step * (mel[above] - 15.0))
    return hz


def slaney_mel_filters(
    n_bins: int, n_mels: int, fmin: float, fmax: float, sample_rate: int
) -> np.ndarray:
    """Triangular filters ``[n_bins, n_mels]`` on the Slaney scale, each of unit area."""
    edges = _mel_to_hz(
        np.linspace(_hz_to_mel(np.array([fmin]))[0], _hz_to_mel(np.array([fmax]))[0], n_mels + 2)
    )
    bins = np.linspace(0.0, sample_rate / 2.0, n_bins)
    widths = np.diff(edges)
    offsets = edges[None, :] - bins[:, None]
    rising = -offsets[:, :-2] / widths[:-1]
    falling = offsets[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    areas: np.ndarray = filters * (2.0 / (edges[2:] - edges[:-2]))[None, :]
    return areas


@dataclass(frozen=True)
class ClapTokens:
    tokenizer: Tokenizer
    limit: int
    pad_id: int
    eos_id: int

    @classmethod
    def load(cls, folder: Path) -> ClapTokens:
        """Raises: ModelFilesError: a file is missing or malformed."""
        try:
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            text = json.loads((folder / "config.json").read_text(encoding="utf-8"))["text_config"]
            pad_id = int(text.get("pad_token_id", 1))
            limit = int(text["max_position_embeddings"]) - pad_id - 1
        except Exception as exc:  # tokenizers raises a bare Exception on a malformed file
            raise ModelFilesError(f"the CLAP tokenizer or config in {folder}: {exc}") from exc
        eos = tokenizer.token_to_id("</s>")
        if eos is None:
            raise ModelFilesError(f"{folder / 'tokenizer.json'} has no </s> token")
        return cls(tokenizer, limit, pad_id, eos)

    def token_ids(self, text: str) -> list[int]:
        ids = self.tokenizer.encode(text).ids
        if len(ids) > self.limit:
            ids = [*ids[: self.limit - 1], self.eos_id]
        return ids

    def batch(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``input_ids`` and ``attention_mask`` ``[n, longest]`` (int64), right-padded."""
        rows = [self.token_ids(t) for t in texts]
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self.pad_id, np.int64)
        mask = np.zeros((len(rows), width), np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return ids, mask
