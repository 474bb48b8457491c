"""Tempo of a loop from its audio, refined to the producer's BPM by the loop's exact length.

1. **Onset strength**: the rise of log energy in log-spaced bands, averaged over bands.
2. **Periodicity**: a comb over the envelope's circular autocorrelation (mean at 1, 2, 3...
   beat periods) on a 0.1 BPM grid, under a prior around 120.
3. **Octave**: half, once or twice the best, chosen by the median interval between strong
   low-band onsets (kick and snare bodies).
4. **Whole bars**: the integer BPM near the estimate at which the clip lasts whole bars wins.

None without a steady pulse. Measured by ``bench/bench_analysis.py``; a change to the
constants needs a new ``ANALYSIS_VERSION``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

HOP_S = 0.01
"""Onset-envelope hop (seconds): 100 frames a second, fine enough for 16ths at 200 BPM."""
WINDOW_S = 0.04
"""Spectrogram window (seconds, rounded up to a power of two of samples)."""
BANDS_PER_OCTAVE = 3
BAND_RANGE_HZ = (40.0, 12000.0)
ACCENT_TOP_HZ = 330.0
"""Bands whose upper edge is at most this carry the accents (kick and snare bodies)."""
ACCENT_THRESHOLD = 0.25
"""An accent is a local maximum of the low-band envelope above this fraction of its peak."""
ACCENT_MIN_GAP_S = 0.035
TEMPO_RANGE_BPM = (60.0, 200.0)
"""Tempi reported: producers' material from slow hip hop to fast drum and bass."""
GRID_BPM = 0.1
PRIOR_CENTER_BPM = 120.0
PRIOR_OCTAVES = 1.0
MIN_ONSETS_PER_BEAT = 0.75
"""Fewer strong onsets than this per beat is no pulse (chords held a bar each, a drone)."""
MIN_ONSET_RISE = 0.4
"""An onset, counted for the pulse, raises the band-averaged log energy by at least this
(hits measure 1-5; the beating of a held chord's partials 0.1-0.3)."""
MIN_DURATION_S = 1.0
"""Shorter clips hold too few beats for a tempo."""
MIN_PULSE_CLARITY = 0.15
"""Below this comb salience (see :class:`TempoEstimate`) there is no steady pulse: noise, a
held pad, a single hit, a one-shot's tail. Drum loops measure 0.35-0.95."""
BAR_BEATS = 4
BAR_COUNTS = (1, 2, 4, 8, 16, 32, 64)
"""Loop lengths producers cut (bars of 4/4)."""
WHOLE_BAR_TOLERANCE_S = 0.01
"""How far a duration may be from ``bars * 4 * 60 / bpm`` at an integer BPM and still count as
whole bars (seconds): sample rounding and resampling stay far inside it."""
REFINE_WINDOW = 0.03
"""A whole-bar tempo within this fraction of the comb's estimate replaces it (±4 at 140)."""
SHORT_LOOP_BARS = 2
"""A clip of at most this many bars is too short for the comb to be sure of its level:
its whole-bar tempo nearest the accents is taken even if the comb found none near it."""
UNFITTED_CONFIDENCE = 0.6
"""Confidence factor of a tempo not confirmed by the clip's length (not whole bars)."""
SHORT_LOOP_CONFIDENCE = 0.6
"""Confidence factor of a short loop's tempo taken from its length against the comb."""


@dataclass(frozen=True)
class TempoEstimate:
    """A tempo and how it was found. ``bpm`` is an integer when ``bars`` (whole 4/4 bars at
    it) is set; ``confidence`` is ``pulse_clarity`` (mean normalised autocorrelation at whole
    beat periods), scaled down when the length did not confirm it; ``comb_bpm`` is before that."""

    bpm: float
    confidence: float
    pulse_clarity: float
    bars: int | None
    accent_bpm: float | None
    comb_bpm: float


def band_onsets(samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-band onset strength: ``(rise [frames, bands], band upper edges in Hz, fps)``."""
    # float64: numpy's float32 FFT measured ~3x slower than its float64 one here.
    x = np.asarray(samples, dtype=np.float64).ravel()
    hop = max(1, round(sample_rate * HOP_S))
    n_fft = 1 << max(6, math.ceil(math.log2(sample_rate * WINDOW_S)))
    padded = np.pad(x, (n_fft // 2, n_fft // 2 + hop))
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    spectrum = np.fft.rfft(frames * np.hanning(n_fft), axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    low, high = BAND_RANGE_HZ[0], min(BAND_RANGE_HZ[1], sample_rate / 2)
    edges = low * 2.0 ** (np.arange(0, math.log2(high / low) + 1e-9, 1 / BANDS_PER_OCTAVE))
    bins = np.searchsorted(freqs, edges)
    keep = np.flatnonzero(np.diff(bins) > 0)  # the lowest bands can fall between two bins
    starts, stops = bins[keep], bins[keep + 1]
    sums = np.add.reduceat(power[:, starts[0] : stops[-1]], starts - starts[0], axis=1)
    # Kept bands are contiguous, so reduceat's "up to the next start" is each band's stop.
    energy = sums / (stops - starts)
    # Compressed relative to the clip's own level so quiet and loud loops read alike; the
    # floor keeps near-empty bands from turning their noise into onsets.
    compressed = np.log1p(energy / (1e-3 * float(energy.mean()) + 1e-20))
    # The first frame rises from the last: a loop's downbeat follows its own end.
    rise = np.maximum(0.0, np.diff(compressed, axis=0, prepend=compressed[-1:]))
    return rise, edges[keep + 1], sample_rate / hop


def onset_envelope(samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, float]:
    """The onset-strength envelope of a mono clip (every band weighs the same) and its fps."""
    rise, _, fps = band_onsets(samples, sample_rate)
    return rise.mean(axis=1), fps


def _autocorrelation(env: np.ndarray) -> np.ndarray:
    """Circular autocorrelation of the mean-removed envelope, normalised to 1 at lag 0
    (circular: a loop's end runs into its start, so even a one-bar loop shows its beat)."""
    e = env - env.mean()
    acf = np.fft.irfft(np.abs(np.fft.rfft(e)) ** 2, e.shape[0])
    return acf / acf[0] if acf[0] > 0 else np.zeros(e.shape[0])


def _salience(acf: np.ndarray, fps: float, bpms: np.ndarray) -> np.ndarray:
    """Mean autocorrelation at whole beat periods, for every tempo of ``bpms``."""
    # Lags beyond half the clip rest on too few frame pairs to be trusted.
    max_lag = 0.5 * acf.shape[0]
    periods = 60.0 * fps / bpms
    teeth = np.maximum(1, np.floor(max_lag / periods)).astype(int)
    out = np.zeros(bpms.shape[0])
    for k in range(1, int(teeth.max()) + 1):
        use = teeth >= k
        lag = k * periods[use]
        i = np.minimum(np.floor(lag).astype(int), acf.shape[0] - 2)
        frac = lag - i
        out[use] += (1 - frac) * acf[i] + frac * acf[i + 1]
    salience: np.ndarray = out / teeth
    return salience


def whole_bar_tempi(duration_s: float) -> list[tuple[int, int]]:
    """``(bpm, bars)`` for every integer BPM in range at which the clip lasts whole bars."""
    out = []
    for bars in BAR_COUNTS:
        bpm = round(bars * BAR_BEATS * 60.0 / duration_s)
        if not TEMPO_RANGE_BPM[0] <= bpm <= TEMPO_RANGE_BPM[1]:
            continue
        if abs(duration_s - bars * BAR_BEATS * 60.0 / bpm) <= WHOLE_BAR_TOLERANCE_S:
            out.append((bpm, bars))
    return out


def _onsets(env: np.ndarray, fps: float, floor: float = 0.0) -> np.ndarray:
    """Frames of the strong onsets: local maxima above a fraction of the envelope's peak
    and above ``floor``."""
    if env.size < 3 or env.max() <= 0:
        return np.zeros(0, dtype=int)
    gap = max(1, round(ACCENT_MIN_GAP_S * fps))
    padded = np.pad(env, gap, constant_values=-1.0)
    local_max = np.lib.stride_tricks.sliding_window_view(padded, 2 * gap + 1).max(axis=1)
    strong = env >= max(floor, ACCENT_THRESHOLD * float(env.max()))
    peaks = np.flatnonzero(strong & (env >= local_max))
    # A flat top yields neighbouring maxima: keep the first of each run.
    return peaks[np.concatenate(([True], np.diff(peaks) > gap))] if peaks.size else peaks


def _accent_bpm(rise: np.ndarray, tops: np.ndarray, fps: float) -> float | None:
    """60 / the median interval between strong low-band onsets, or None if fewer than 3."""
    low = rise[:, tops <= ACCENT_TOP_HZ]
    if low.shape[1] == 0:
        return None
    peaks = _onsets(low.mean(axis=1), fps)
    if peaks.size < 3:
        return None
    return 60.0 * fps / float(np.median(np.diff(peaks)))


def _peak_bpm(score: np.ndarray, bpms: np.ndarray, i: int) -> float:
    """The grid tempo ``i`` moved to the vertex of the parabola through its neighbours."""
    if 0 < i < score.shape[0] - 1:
        a, b, c = score[i - 1 : i + 2]
        denom = a - 2 * b + c
        if denom < 0:  # a maximum: the vertex lies within half a step of it
            shift = min(0.5, max(-0.5, 0.5 * (a - c) / denom))
            return float(bpms[i] + shift * GRID_BPM)
    return float(bpms[i])


def estimate_tempo(
    samples: np.ndarray, sample_rate: int, duration_s: float | None = None
) -> TempoEstimate | None:
    """The tempo of a loop, or None when the clip is too short or has no steady pulse.
    ``duration_s``: the file's exact duration before resampling, if known."""
    n = int(np.asarray(samples).size)
    duration = float(duration_s) if duration_s else n / sample_rate
    if n == 0 or duration < MIN_DURATION_S:
        return None
    rise, tops, fps = band_onsets(samples, sample_rate)
    env = rise.mean(axis=1)
    acf = _autocorrelation(env)
    bpms = np.arange(TEMPO_RANGE_BPM[0], TEMPO_RANGE_BPM[1] + GRID_BPM / 2, GRID_BPM)
    salience = _salience(acf, fps, bpms)
    prior = np.exp(-0.5 * (np.log2(bpms / PRIOR_CENTER_BPM) / PRIOR_OCTAVES) ** 2)
    best = int(np.argmax(salience * prior))
    clarity = float(salience[best])
    if not np.isfinite(clarity) or clarity < MIN_PULSE_CLARITY:
        return None
    # The octave: half, once or twice the best, refined to the comb's own peak near each.
    family = []
    for factor in (0.5, 1.0, 2.0):
        target = float(bpms[best]) * factor
        if not 0.99 * TEMPO_RANGE_BPM[0] <= target <= 1.01 * TEMPO_RANGE_BPM[1]:
            continue
        target = min(max(target, TEMPO_RANGE_BPM[0]), TEMPO_RANGE_BPM[1])
        near = np.flatnonzero(np.abs(bpms - target) <= max(GRID_BPM, 0.01 * target))
        i = int(near[np.argmax(salience[near])])
        family.append(_peak_bpm(salience, bpms, i))
    accent = _accent_bpm(rise, tops, fps)
    accent = round(accent, 2) if accent else None
    comb = (
        min(family, key=lambda f: abs(math.log2(f / accent)))
        if accent
        else _peak_bpm(salience * prior, bpms, best)
    )
    clarity = min(1.0, clarity)
    # A pulse needs events: chords held a bar each repeat, but nothing beats.
    if _onsets(env, fps, MIN_ONSET_RISE).size < MIN_ONSETS_PER_BEAT * duration * comb / 60.0:
        return None
    fits = whole_bar_tempi(duration)
    # The comb's octaves that the length confirms; the accents choose among them.
    confirmed = [
        (bpm, bars) for bpm, bars in fits if any(abs(bpm - f) <= REFINE_WINDOW * f for f in family)
    ]
    anchor = accent or comb
    if confirmed:
        bpm, bars = min(confirmed, key=lambda c: abs(math.log2(c[0] / anchor)))
        return TempoEstimate(
            float(bpm), round(clarity, 3), round(clarity, 3), bars, accent, round(comb, 2)
        )
    short = [(bpm, bars) for bpm, bars in fits if bars <= SHORT_LOOP_BARS]
    if short:
        bpm, bars = min(short, key=lambda c: abs(math.log2(c[0] / anchor)))
        confidence = SHORT_LOOP_CONFIDENCE * clarity
        return TempoEstimate(
            float(bpm), round(confidence, 3), round(clarity, 3), bars, accent, round(comb, 2)
        )
    confidence = UNFITTED_CONFIDENCE * clarity
    return TempoEstimate(
        round(comb, 1), round(confidence, 3), round(clarity, 3), None, accent, round(comb, 2)
    )
