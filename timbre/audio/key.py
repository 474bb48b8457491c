"""Musical key (tonic and mode) of tonal material from its audio, numpy only.

Spectral peaks well above a smoothed log spectrum (50 Hz-2.5 kHz) add their magnitude to
their tuning-corrected pitch class; the key is the best of the 24 Krumhansl-Kessler profiles.
Only clearly pitched material with a told mode gets one: a single note, a power chord, drums
or noise get None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

WINDOW_S = 0.34
"""Analysis window (seconds, rounded up to a power of two of samples): 2.9 Hz bins at 24 kHz,
enough to part semitones down to ~50 Hz."""
BAND_HZ = (50.0, 2500.0)
"""Fundamentals and the first harmonics of bass, chords and leads; higher partials blur."""
SMOOTH_HZ = 60.0
"""Width of the moving average of the log spectrum that a peak must stand above."""
PEAK_DB = 12.0
"""How far above its surroundings a local maximum must stand to count as a tonal peak (dB)."""
MIN_DURATION_S = 0.3
MIN_TONALITY = 0.25
"""Least share of the band's energy in tonal peaks: drums and noise measure below ~0.15."""
MIN_CORRELATION = 0.6
"""Least correlation with the best key profile."""
MIN_MARGIN = 0.03
"""Least lead of the key's correlation over the best key on another tonic (its relative,
dominant or subdominant key): below it the tonic is not told."""
FULL_MARGIN = 0.1
"""A lead this large or more leaves the confidence at the correlation (see KeyEstimate)."""
MIN_THIRD = 0.18
"""Least weight of the tonic's third in the chroma (peak = 1): chords measure 0.22 or more;
a single harmonic note puts ~0.12 on its major third through its 5th partial."""
THIRD_RATIO = 2.0
"""The mode's third must outweigh the other third this many times over."""
OPENING_S = 0.5
"""The opening whose lowest strong note names the tonic between relative keys (seconds)."""
OPENING_STRONG = 0.3
"""A note of the opening counts when its peak is at least this fraction of the loudest."""
RELATIVE_BAND = 0.2
"""The relative key may score this much below the best and still be chosen by the opening."""

# Krumhansl & Kessler (1982) probe-tone profiles, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])

MAJOR_SPELLING = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MINOR_SPELLING = ("Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm")
"""How a detected key is written: the spelling with fewer accidentals (Db, not C#; G#m, not
Abm), ties as commonly written (F#, Ebm)."""


@dataclass(frozen=True)
class KeyEstimate:
    """A key (``"Am"``, ``"Eb"``) and the evidence for it: ``confidence`` is the profile
    correlation times ``min(1, margin / FULL_MARGIN)``, ``margin`` its lead over the best key
    on another tonic, ``tonality`` the share of energy in tonal peaks."""

    key: str
    confidence: float
    correlation: float
    margin: float
    tonality: float


def key_name(tonic: int, minor: bool) -> str:
    """The display spelling of a key given its tonic pitch class (0 = C)."""
    return (MINOR_SPELLING if minor else MAJOR_SPELLING)[tonic % 12]


@dataclass(frozen=True)
class Chroma:
    """12 pitch-class weights (C first, peak 1), the share of energy in tonal peaks, and the
    pitch class of the lowest strong note of the opening (None if none)."""

    profile: np.ndarray
    tonality: float
    opening_bass: int | None


def chroma(samples: np.ndarray, sample_rate: int) -> Chroma:
    """The pitch-class profile of a mono clip, from its tonal spectral peaks."""
    x = np.asarray(samples, dtype=np.float64).ravel()
    n_fft = 1 << math.ceil(math.log2(sample_rate * WINDOW_S))
    hop = n_fft // 2
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    mag = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1))
    bin_hz = sample_rate / n_fft
    lo = max(1, round(BAND_HZ[0] / bin_hz))
    hi = min(round(BAND_HZ[1] / bin_hz), mag.shape[1] - 2)
    band = mag[:, lo - 1 : hi + 1]  # one bin of context each side for the peak test
    log = 20 * np.log10(band + 1e-12)
    width = max(3, round(SMOOTH_HZ / bin_hz) | 1)
    kernel = np.ones(width) / width
    padded = np.pad(log, ((0, 0), (width // 2, width // 2)), mode="edge")
    background = np.stack([np.convolve(row, kernel, mode="valid") for row in padded])
    centre = log[:, 1:-1]
    is_peak = (
        (centre > log[:, :-2]) & (centre >= log[:, 2:]) & (centre - background[:, 1:-1] >= PEAK_DB)
    )
    power = band**2
    total = float(power[:, 1:-1].sum())
    if total <= 0 or not is_peak.any():
        return Chroma(np.zeros(12), 0.0, None)
    rows, cols = np.nonzero(is_peak)
    cols = cols + 1  # index into ``band``
    # Parabolic interpolation on the log magnitude: the peak's frequency between bins.
    a, b, c = log[rows, cols - 1], log[rows, cols], log[rows, cols + 1]
    denom = a - 2 * b + c
    offset = np.where(denom < 0, 0.5 * (a - c) / np.where(denom < 0, denom, -1.0), 0.0)
    offset = np.clip(offset, -0.5, 0.5)  # a local maximum's vertex lies within half a bin
    hz = (lo - 1 + cols + offset) * bin_hz
    weight = band[rows, cols]
    # A partial's power spills into the bins beside it: count the peak and its neighbours.
    tonal = float((power[rows, cols - 1] + power[rows, cols] + power[rows, cols + 1]).sum())
    pitch = 69 + 12 * np.log2(hz / 440.0)
    deviation = pitch - np.round(pitch)
    tuning = float(np.angle(np.sum(weight * np.exp(2j * np.pi * deviation))) / (2 * np.pi))
    classes = np.round(pitch - tuning).astype(int) % 12
    profile = np.bincount(classes, weights=weight, minlength=12)
    return Chroma(
        profile / profile.max(),
        min(1.0, tonal / total),
        _opening_bass(
            rows, hz, weight, classes, opening_frames=max(1, round(OPENING_S * sample_rate / hop))
        ),
    )


def _opening_bass(
    rows: np.ndarray, hz: np.ndarray, weight: np.ndarray, classes: np.ndarray, opening_frames: int
) -> int | None:
    """Pitch class of the lowest peak of the opening frames that is a strong one."""
    opening = rows < opening_frames
    if not opening.any():
        return None
    strong = opening & (weight >= OPENING_STRONG * weight[opening].max())
    return int(classes[strong][np.argmin(hz[strong])])


def key_scores(profile: np.ndarray) -> np.ndarray:
    """Correlation of a chroma with every key: ``[24]``, majors C..B then minors Cm..Bm."""
    scores = np.zeros(24)
    if not profile.any() or np.allclose(profile, profile[0]):
        return scores
    for tonic in range(12):
        scores[tonic] = np.corrcoef(profile, np.roll(MAJOR_PROFILE, tonic))[0, 1]
        scores[12 + tonic] = np.corrcoef(profile, np.roll(MINOR_PROFILE, tonic))[0, 1]
    return scores


def estimate_key(samples: np.ndarray, sample_rate: int) -> KeyEstimate | None:
    """The key of a clip, or None when it is too short, not clearly pitched, or its mode is
    not told (see the module docstring)."""
    if np.asarray(samples).size < MIN_DURATION_S * sample_rate:
        return None
    found = chroma(samples, sample_rate)
    profile = found.profile
    if found.tonality < MIN_TONALITY:
        return None
    scores = key_scores(profile)
    best = int(np.argmax(scores))
    tonic = best % 12
    # A major key and its relative minor share their notes (C and Am): the profiles cannot
    # part them when the chords are shared too (Am-F-C-G). A loop opens on its tonic, so
    # the bass note it opens on decides between the two.
    relative = (tonic + 9) % 12 if best < 12 else (tonic + 3) % 12
    if (
        found.opening_bass == relative
        and scores[relative + 12 * (best < 12)] >= scores[best] - RELATIVE_BAND
    ):
        tonic = relative
    # The mode is read from the thirds themselves: the profiles weigh the third no more than
    # other degrees, and harmonic partials put a faint major third over every minor root.
    minor_third, major_third = profile[(tonic + 3) % 12], profile[(tonic + 4) % 12]
    minor = bool(minor_third > major_third)
    third, other = (minor_third, major_third) if minor else (major_third, minor_third)
    if third < MIN_THIRD or third < THIRD_RATIO * other:
        return None
    correlation = float(scores[tonic + 12 * minor])
    # The rival is the best key outside the relative pair (which shares the same notes).
    rival = float(max(scores[k] for k in range(24) if k % 12 not in (best % 12, relative)))
    margin = correlation - rival
    if correlation < MIN_CORRELATION or margin < MIN_MARGIN:
        return None
    confidence = correlation * min(1.0, margin / FULL_MARGIN)
    return KeyEstimate(
        key_name(tonic, minor),
        round(confidence, 3),
        round(correlation, 3),
        round(margin, 3),
        round(found.tonality, 3),
    )
