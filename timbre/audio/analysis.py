"""What a sample's audio says about it: tempo, key, envelope and waveform peaks, in one pass.

Short numpy DSP of our own, not librosa (~370 MB and seconds of warm-up per worker). A result
depends only on the samples, rate, duration and :data:`ANALYSIS_VERSION`: bump it with any
change of behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from timbre.audio.key import KeyEstimate, estimate_key
from timbre.audio.peaks import PEAKS_FORMAT, compute_peaks, encode_peaks
from timbre.audio.tempo import TempoEstimate, estimate_tempo

ANALYSIS_VERSION = f"timbre-dsp-1+env1+peaks{PEAKS_FORMAT}"
"""The payload's ``analysis_version``: tempo 1, key 1, envelope 1 and the peaks format."""


# The envelope, evidence for the kind: a one-shot's energy falls away, a loop's comes back
# (re-attacks: sudden rises near the peak after the first gesture; a ringing crash has none).
FRAME_S = 0.01
"""Level frames (seconds)."""
FLOOR_DB = -80.0
"""Levels are clipped here below the peak (digital silence)."""
RISE_DB = 6.0
"""A re-attack rises at least this far above the loudest level of the stretch before it
(:data:`BEFORE_S`): a new hit, not the beating of a ringing cymbal climbing out of a dip."""
BEFORE_S = (0.03, 0.15)
NEAR_PEAK_DB = -15.0
"""...and reaches at least this level relative to the loudest frame (a hit, not a rattle)."""
GESTURE_S = 0.25
"""Rises this soon after the first attack belong to it: the strings of a strum, a flam."""
MIN_GAP_S = 0.1
"""Rises closer than this are one attack."""
DECAYED_DB = -24.0
"""A sound decays when its final stretch is at least this far below its peak..."""
FADING_DB = -15.0
FALL_DB = 6.0
"""...or at least :data:`FADING_DB` below it, with its second half :data:`FALL_DB` quieter
than its first (a cymbal cut while still ringing)."""
TAIL_FRACTION = 0.1
"""The final stretch: this fraction of the clip (at least :data:`TAIL_MIN_S`)."""
TAIL_MIN_S = 0.2


@dataclass(frozen=True)
class Envelope:
    """Re-attacks after the first gesture, the final stretch's level below the peak (dB,
    <= 0), and how much quieter the second half is than the first (dB)."""

    reattacks: int
    end_db: float
    fall_db: float

    @property
    def decays(self) -> bool:
        """One gesture that falls away: no re-attack, and it ends well below its peak."""
        fading = self.end_db <= FADING_DB and self.fall_db >= FALL_DB
        return self.reattacks == 0 and (self.end_db <= DECAYED_DB or fading)

    @property
    def repeats(self) -> bool:
        """The energy comes back: more than one attack after the first gesture."""
        return self.reattacks >= 2


def frame_levels(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """RMS level of each :data:`FRAME_S` frame in dB relative to the loudest frame."""
    hop = max(1, round(FRAME_S * sample_rate))
    n = len(samples) // hop
    if n == 0:
        return np.zeros(0)
    frames = np.asarray(samples[: n * hop], dtype=np.float64).reshape(n, hop)
    power = np.mean(frames * frames, axis=1)
    peak = float(power.max())
    if peak <= 0.0:
        return np.full(n, FLOOR_DB)
    levels: np.ndarray = np.maximum(10.0 * np.log10(np.maximum(power / peak, 1e-30)), FLOOR_DB)
    return levels


def measure_envelope(samples: np.ndarray, sample_rate: int) -> Envelope | None:
    """The envelope of mono samples, or None when they are silent or shorter than a frame."""
    levels = frame_levels(samples, sample_rate)
    if levels.size == 0 or levels.max() <= FLOOR_DB:
        return None
    near, far = (round(s / FRAME_S) for s in BEFORE_S)
    padded = np.concatenate((np.full(far, FLOOR_DB), levels))
    windows = np.lib.stride_tricks.sliding_window_view(padded, far - near + 1)
    before = windows.max(axis=1)[: levels.size]  # frames i-far .. i-near of each frame i
    rising = (levels - before >= RISE_DB) & (levels >= NEAR_PEAK_DB)
    first = int(np.argmax(levels >= NEAR_PEAK_DB))
    gesture_end = first + round(GESTURE_S / FRAME_S)
    gap = round(MIN_GAP_S / FRAME_S)
    reattacks, last = 0, gesture_end - gap
    for i in np.flatnonzero(rising):
        if i > gesture_end and i - last >= gap:
            reattacks += 1
            last = int(i)
        elif i > gesture_end:
            last = int(i)
    tail = max(round(TAIL_MIN_S / FRAME_S), round(TAIL_FRACTION * levels.size))
    half = max(1, levels.size // 2)
    fall = _mean_db(levels[:half]) - _mean_db(levels[half:]) if levels.size > 1 else 0.0
    return Envelope(reattacks, round(_mean_db(levels[-tail:]), 1), round(fall, 1))


def _mean_db(levels: np.ndarray) -> float:
    """The level of the mean power of frames given in dB."""
    power = float(np.mean(10.0 ** (levels / 10.0)))
    return max(FLOOR_DB, 10.0 * float(np.log10(max(power, 1e-30))))


@dataclass(frozen=True)
class Heard:
    """The audio's own facts about a sample; tempo and key are None when not asked or not
    found, the envelope None for silence, ``peaks`` as the payload stores them."""

    tempo: TempoEstimate | None
    key: KeyEstimate | None
    peaks: str
    envelope: Envelope | None = None
    version: str = ANALYSIS_VERSION


def analyse(
    samples: np.ndarray,
    sample_rate: int,
    duration_s: float | None = None,
    *,
    tempo: bool = True,
    key: bool = True,
) -> Heard:
    """Peaks and the envelope always; tempo and key when asked. ``duration_s``: the file's
    exact duration, for the whole-bar tempo. ValueError: no samples, or non-finite ones."""
    x = np.asarray(samples, dtype=np.float32).ravel()
    peaks = encode_peaks(compute_peaks(x))  # validates: non-empty and finite
    return Heard(
        tempo=estimate_tempo(x, sample_rate, duration_s) if tempo else None,
        key=estimate_key(x, sample_rate) if key else None,
        peaks=peaks,
        envelope=measure_envelope(x, sample_rate),
    )
