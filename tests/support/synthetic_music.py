"""Synthetic music with known answers: drum loops at a known tempo, chord loops in a known key.

The tests and ``bench/bench_analysis.py`` measure the tempo and key estimators
(:mod:`timbre.audio.tempo`, :mod:`timbre.audio.key`) on these, so the patterns are the ones
producers' loops are built on (four-on-the-floor, boom bap, two-step, half-time trap,
breakbeat) and the progressions are common ones in both modes, cut to whole bars at
realistic sample rates. Everything is seeded: the same arguments give the same samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_OF = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#"}


@dataclass(frozen=True)
class DrumPattern:
    """One bar of 4/4: for each voice, the beats (0-based, fractional) it plays on."""

    name: str
    kick: tuple[float, ...]
    snare: tuple[float, ...]
    hat: tuple[float, ...]
    open_hat: tuple[float, ...] = ()


SIXTEENTHS = tuple(i / 4 for i in range(16))
EIGHTHS = tuple(i / 2 for i in range(8))

PATTERNS = {
    p.name: p
    for p in (
        DrumPattern("four_on_the_floor", (0, 1, 2, 3), (1, 3), SIXTEENTHS, (0.5, 1.5, 2.5, 3.5)),
        DrumPattern("techno", (0, 1, 2, 3), (), EIGHTHS, (0.5, 1.5, 2.5, 3.5)),
        DrumPattern("boom_bap", (0, 1.75, 2.5), (1, 3), EIGHTHS),
        DrumPattern("two_step", (0, 2.5), (1, 3), EIGHTHS),
        DrumPattern("half_time", (0, 0.75, 2.5), (2,), SIXTEENTHS),
        DrumPattern("breakbeat", (0, 0.5, 2.25, 2.5), (1, 1.75, 3, 3.75), EIGHTHS),
    )
}
"""Drum patterns by name; ``four_on_the_floor`` is the plain one the tests pin octave-free."""

MAJOR_PROGRESSIONS = ((0, 5, 7, 0), (0, 9, 5, 7), (0, 7, 9, 5), (0, 5, 0, 7))
"""Root offsets (semitones above the tonic) of I-IV-V-I, I-vi-IV-V, I-V-vi-IV, I-IV-I-V."""
MINOR_PROGRESSIONS = ((0, 5, 7, 0), (0, 8, 10, 0), (0, 5, 8, 7), (0, 8, 3, 10))
"""i-iv-v-i, i-VI-VII-i, i-iv-VI-V, i-VI-III-VII (the last is also vi-IV-I-V of the relative
major: the tonic is told only by where the loop starts and what the bass dwells on)."""

_MAJOR_TRIADS = {0: "maj", 2: "min", 4: "min", 5: "maj", 7: "maj", 9: "min", 11: "dim"}
_MINOR_TRIADS = {0: "min", 2: "dim", 3: "maj", 5: "min", 7: "maj", 8: "maj", 10: "maj"}
_INTERVALS = {"maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6)}


def _seconds(n: int, sr: int) -> NDArray[np.float64]:
    return np.arange(n) / sr


def _kick(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = _seconds(round(0.35 * sr), sr)
    sweep = rng.uniform(45, 60) + rng.uniform(90, 150) * np.exp(-t * rng.uniform(25, 40))
    return np.sin(2 * np.pi * np.cumsum(sweep) / sr) * np.exp(-t * rng.uniform(7, 11))


def _snare(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = _seconds(round(0.25 * sr), sr)
    body = np.sin(2 * np.pi * rng.uniform(170, 230) * t) * np.exp(-t * 30)
    noise = rng.standard_normal(len(t)) * np.exp(-t * rng.uniform(14, 22))
    return 0.45 * body + 0.5 * noise


def _hat(sr: int, rng: np.random.Generator, decay: float) -> np.ndarray:
    t = _seconds(round(min(0.3, 4.0 / decay) * sr), sr)
    noise = np.diff(rng.standard_normal(len(t) + 1))  # a crude high-pass: bright noise
    return 0.25 * noise * np.exp(-t * decay)


def drum_loop(
    bpm: float,
    bars: int,
    sr: int,
    *,
    pattern: str = "four_on_the_floor",
    seed: int = 0,
    swing: float = 0.0,
    jitter_ms: float = 0.0,
) -> np.ndarray:
    """A drum loop of exactly ``bars`` bars of 4/4 at ``bpm`` (float32 mono, peak 0.9).

    Args:
        bpm: tempo in beats per minute.
        bars: whole bars; the clip lasts ``bars * 4 * 60 / bpm`` seconds (to the sample).
        sr: sample rate (Hz).
        pattern: a name of :data:`PATTERNS`.
        seed: for the sounds' variation and the timing jitter.
        swing: delay of off-beat 16ths as a fraction of a 16th (0 = straight).
        jitter_ms: standard deviation of a human timing error per hit (ms).
    """
    rng = np.random.default_rng(seed)
    spec = PATTERNS[pattern]
    beat_s = 60.0 / bpm
    out = np.zeros(round(bars * 4 * beat_s * sr))
    voices: tuple[tuple[tuple[float, ...], Callable[[], np.ndarray], float], ...] = (
        (spec.kick, lambda: _kick(sr, rng), 1.0),
        (spec.snare, lambda: _snare(sr, rng), 0.8),
        (spec.hat, lambda: _hat(sr, rng, rng.uniform(35, 60)), 0.5),
        (spec.open_hat, lambda: _hat(sr, rng, 9.0), 0.4),
    )
    for bar in range(bars):
        for beats, make, gain in voices:
            for b in beats:
                late = swing * 0.25 if (b * 4) % 2 == 1 else 0.0
                when_s = (bar * 4 + b + late) * beat_s + rng.normal(0, jitter_ms / 1000)
                start = min(max(0, round(when_s * sr)), out.shape[0] - 1)
                sound = make()[: out.shape[0] - start]
                accent = gain * (1.0 if b == int(b) else 0.7) * rng.uniform(0.85, 1.0)
                out[start : start + sound.shape[0]] += accent * sound
    return (0.9 * out / max(1e-9, float(np.abs(out).max()))).astype(np.float32)


def parse_test_key(key: str) -> tuple[int, bool]:
    """``"Bbm"`` -> (10, True): the tonic pitch class and whether the key is minor."""
    minor = key.endswith("m")
    note = key[:-1] if minor else key
    return NOTE_NAMES.index(_FLAT_OF.get(note, note)), minor


def _voice(freq_hz: np.ndarray | float, n: int, sr: int, harmonics: int) -> np.ndarray:
    t = _seconds(n, sr)
    out = np.zeros(n)
    for h in range(1, harmonics + 1):
        if h * np.max(freq_hz) < sr / 2:
            out += np.sin(2 * np.pi * h * freq_hz * t) / h
    return out


def chord_loop(
    key: str,
    bpm: float,
    bars: int,
    sr: int,
    *,
    progression: int = 0,
    seed: int = 0,
    stabs: bool = False,
    detune_cents: float = 0.0,
) -> np.ndarray:
    """A chord loop in ``key``: one diatonic triad per bar over its root in the bass.

    Args:
        key: e.g. ``"C"``, ``"F#m"``, ``"Bb"``, ``"Ebm"`` (sharps or flats).
        bpm: tempo (the chords change every bar of 4 beats).
        bars: whole bars; the progression repeats.
        sr: sample rate (Hz).
        progression: index into :data:`MAJOR_PROGRESSIONS` or :data:`MINOR_PROGRESSIONS`.
        seed: for the voicing's octave, the timbre and the phases.
        stabs: chords played as short stabs on every beat instead of held (a pluck loop).
        detune_cents: the whole loop off A440 tuning by this much (a sample pitched by ear).
    """
    rng = np.random.default_rng(seed)
    tonic, minor = parse_test_key(key)
    roots = (MINOR_PROGRESSIONS if minor else MAJOR_PROGRESSIONS)[progression % 4]
    qualities = _MINOR_TRIADS if minor else _MAJOR_TRIADS
    bar_s = 4 * 60.0 / bpm
    out = np.zeros(round(bars * bar_s * sr))  # the same length as drum_loop's
    base_midi = 48 + int(rng.integers(0, 12))  # chords sit around C3-C4
    harmonics = int(rng.integers(3, 8))
    a4_hz = 440.0 * 2 ** (detune_cents / 1200)
    for bar in range(bars):
        offset = roots[bar % len(roots)]
        root_pc = (tonic + offset) % 12
        chord = [root_pc + i for i in _INTERVALS[qualities[offset]]]
        start, stop = round(bar * bar_s * sr), round((bar + 1) * bar_s * sr)
        bar_n = stop - start
        notes = [base_midi + ((pc - base_midi) % 12) for pc in chord]
        bass = 36 + ((root_pc - 36) % 12)
        t = _seconds(bar_n, sr)
        if stabs:
            beat_n = bar_n // 4
            env = np.exp(-(np.arange(bar_n) % beat_n) / sr * 6.0)
        else:
            env = np.minimum(1.0, t / 0.02) * np.minimum(1.0, (t[-1] - t) / 0.02 + 1e-3)
        tone = sum(_voice(a4_hz * 2 ** ((m - 69) / 12), bar_n, sr, harmonics) for m in notes)
        low = _voice(a4_hz * 2 ** ((bass - 69) / 12), bar_n, sr, 3)
        out[start : start + bar_n] = env * (0.6 * tone / 3 + 0.5 * low)
    return (0.9 * out / max(1e-9, float(np.abs(out).max()))).astype(np.float32)


def noise_loop(seconds: float, sr: int, *, seed: int = 0) -> np.ndarray:
    """Steady noise with a slow swell: no pitch and no pulse (an ambience or a riser bed)."""
    rng = np.random.default_rng(seed)
    n = round(seconds * sr)
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * np.arange(n) / n)
    return (0.3 * rng.standard_normal(n) * swell).astype(np.float32)


def one_shot(kind: str, sr: int, *, seed: int = 0) -> np.ndarray:
    """A single hit: ``kick``, ``snare``, ``hat`` or ``pluck`` (one note, decaying)."""
    rng = np.random.default_rng(seed)
    if kind == "kick":
        return (0.9 * _kick(sr, rng)).astype(np.float32)
    if kind == "snare":
        return (0.9 * _snare(sr, rng)).astype(np.float32)
    if kind == "hat":
        return (3 * _hat(sr, rng, 40.0)).astype(np.float32)
    n = round(0.8 * sr)
    note = _voice(440 * 2 ** ((int(rng.integers(48, 72)) - 69) / 12), n, sr, 5)
    return (0.5 * note * np.exp(-_seconds(n, sr) * 5)).astype(np.float32)
