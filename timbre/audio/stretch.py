"""Time-stretch and pitch-shift of loops for auditions matched to a project's tempo and key.

A phase vocoder with identity phase locking (Laroche and Dolson, 1999) and a phase reset at
onsets, numpy only:

1. **Frames**: Hann-windowed frames of ~46 ms, read every ``Ha`` samples and written every
   ``Hs`` (``Hs / Ha`` = the stretch); the shorter of the two hops is a quarter window.
2. **Phases**: each bin's phase advances by its instantaneous frequency (from the phase
   change between analysis frames) times the synthesis hop; above 300 Hz every bin of a
   spectral peak's region then turns by the peak's rotation, so a partial's bins stay
   coherent (no phasiness).
3. **Onsets**: frames where much of the spectrum is new (a hit) take their analysis phases
   back unchanged, so drum attacks stay sharp instead of smeared.
4. **Channels** share one set of rotations, taken from their sum: the stereo image is kept.
5. **Pitch**: a shift by ``s`` semitones is a stretch by ``2^(s/12)`` more, then a resampling
   back by the same factor (libsoxr, as :mod:`timbre.audio.resample` offers it).
6. **Loop**: unless asked for a one-shot (``loop=False``), the clip is processed as a
   circle (padded with its own tail and head) and cut to exactly ``round(frames * ratio)``;
   its last ~20 ms cross-fade into what precedes its start, so the rendition's end runs into
   its start without a click.

Measured by ``bench/bench_stretch.py`` and ``tests/audio/test_stretch.py``; docs/audition.md
says why this and not a library. A change to what is rendered needs a new ``STRETCH_VERSION``.
"""

from __future__ import annotations

import math

import numpy as np

from timbre.audio.resample import resample

STRETCH_VERSION = 1
"""Part of a cached rendition's name: renditions of an older algorithm are never served."""
MIN_RATIO, MAX_RATIO = 0.5, 2.0
"""Time factors (rendition length / original length) rendered: an octave of tempo each way."""
MAX_SEMITONES = 12
"""Largest transposition either way (an octave)."""
WINDOW_S = 0.046
"""Analysis window (seconds, rounded to a power of two of samples: 2048 at 44.1 and 48 kHz):
long enough to part the partials of bass notes, short enough to keep hits tight."""
OVERLAP = 4
"""Frames per window length on the denser side (analysis or synthesis)."""
PEAK_NEIGHBOURS = 1
"""A spectral peak stands above this many bins on each side (Laroche and Dolson take 2; 1
keeps the peaks of partials two bins apart, as chords' are in the low mids)."""
LOCK_FROM_HZ = 300.0
"""Bins below this keep their own phase advance: there the partials of a chord and its bass
lie a bin or two apart, and locking one to its louder neighbour moved it (an A minor chord
shifted down 5 semitones lost its minor third to the key detector)."""
ONSET_NOVELTY = 0.3
"""An onset frame has at least this share of its magnitude new since a quarter window before
(drum hits measure 0.4-0.9, held chords below 0.1, chord changes 0.2-0.5)."""
ONSET_FLOOR = 0.02
"""...and at least this fraction of the clip's mean frame magnitude (no resets in silence)."""
CHUNK_FRAMES = 1024
"""Frames transformed at once (~12 s at 44.1 kHz): bounds the working memory of long clips."""
LOOP_FADE_S = 0.02
"""Length of the cross-fade that closes the loop (seconds; at most a quarter of the clip)."""


def stretch_factor(source_bpm: float, target_bpm: float) -> float:
    """The time factor (rendition length / original length) that plays a loop of
    ``source_bpm`` at ``target_bpm``, or at twice or half it, whichever is nearest: a 62 BPM
    loop in a 124 BPM project plays unchanged (half time), a 140 one in a 70 project too.
    Tempi dozens of octaves apart give ``inf`` or 0: outside any range a caller accepts."""
    if not (math.isfinite(source_bpm) and math.isfinite(target_bpm)):
        raise ValueError(f"tempi must be finite, got {source_bpm} and {target_bpm}")
    if source_bpm <= 0 or target_bpm <= 0:
        raise ValueError(f"tempi must be positive, got {source_bpm} and {target_bpm}")
    # In octaves, so that tempi at the ends of the float range (5e-324) stay finite.
    octaves = math.log2(source_bpm) - math.log2(target_bpm)
    fold = min((-1, 0, 1), key=lambda k: abs(octaves - k))  # played at target * 2^fold
    if abs(octaves - fold) > 16:  # no stretch comes near: say how far, without overflow
        return math.inf if octaves > fold else 0.0
    return source_bpm / (target_bpm * 2.0**fold)


def match(
    samples: np.ndarray, sample_rate: int, *, ratio: float, semitones: int, loop: bool = True
) -> np.ndarray:
    """``samples`` lasting ``ratio`` times as long (``round(frames * ratio)`` frames) at the same
    pitch, transposed by ``semitones``; as a loop (its end runs into its start) unless ``loop``
    is False (a one-shot: silence before and after it, so nothing of its attack reaches its end).

    ``samples``: float audio, mono ``[frames]`` (as :func:`timbre.audio.decode.decode_file`
    gives it) or ``[frames, channels]`` (as soundfile reads it); the result has the same layout,
    float32. ``ratio`` is a time factor: 124/120 plays a 124 BPM loop at 120 (see
    :func:`stretch_factor`). Raises ValueError for a ratio outside ``MIN_RATIO..MAX_RATIO``,
    more than ``MAX_SEMITONES`` either way, or samples that are not finite audio.
    """
    x = np.asarray(samples)
    if x.ndim not in (1, 2) or x.shape[0] == 0 or (x.ndim == 2 and x.shape[1] == 0):
        raise ValueError(f"samples must be [frames] or [frames, channels], got {x.shape}")
    if not (math.isfinite(ratio) and MIN_RATIO <= ratio <= MAX_RATIO):
        raise ValueError(f"ratio {ratio} is outside {MIN_RATIO:g}..{MAX_RATIO:g}")
    if isinstance(semitones, bool) or int(semitones) != semitones:
        raise ValueError(f"semitones must be a whole number, got {semitones!r}")
    if abs(semitones) > MAX_SEMITONES:
        raise ValueError(f"semitones {semitones} is outside ±{MAX_SEMITONES}")
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    if not np.isfinite(x).all():
        raise ValueError("samples hold NaN or infinite values")
    frames = x.reshape(x.shape[0], -1).astype(np.float64).T  # [channels, frames]
    n_in = frames.shape[1]
    n_out = max(1, round(n_in * ratio))
    if ratio == 1.0 and semitones == 0:
        out = frames
    else:
        out = _match(frames, sample_rate, ratio, int(semitones), n_out, loop=loop)
    result = np.ascontiguousarray(out.T, dtype=np.float32)
    return result[:, 0] if x.ndim == 1 else result


def _match(
    frames: np.ndarray, sample_rate: int, ratio: float, semitones: int, n_out: int, *, loop: bool
) -> np.ndarray:
    """:func:`match` on ``[channels, frames]`` float64 audio."""
    n_fft = 1 << max(8, round(math.log2(sample_rate * WINDOW_S)))
    pitch = 2.0 ** (semitones / 12)
    # The clip with a few windows of its own tail before it and its head after it: the
    # vocoder's edges fall outside what is kept, and the start has what precedes it in a loop.
    pad = 4 * n_fft
    n_in = frames.shape[1]
    if loop:
        circle = np.take(frames, np.arange(-pad, n_in + pad), axis=1, mode="wrap")
    else:
        circle = np.pad(frames, ((0, 0), (pad, pad)))
    stretched = phase_vocoder(circle, sample_rate, ratio * pitch, n_fft=n_fft)
    if semitones:
        # Played back faster by ``pitch`` (rates as integers: libsoxr's error is below 0.03
        # cents here), it regains the asked length and moves up by ``semitones``.
        orig = round(sample_rate * pitch)
        stretched = np.stack([resample(c, orig, sample_rate, "soxr_vhq") for c in stretched])
    start = round(pad * ratio)
    out = stretched[:, start : start + n_out].copy()
    if out.shape[1] < n_out:  # not expected: the padding after the clip is far longer
        out = np.pad(out, ((0, 0), (0, n_out - out.shape[1])))
    fade = min(round(LOOP_FADE_S * sample_rate), n_out // 4, start) if loop else 0
    if fade > 0:
        # The end turns into what the vocoder wrote just before the start: the same music,
        # whose phases run on into the rendition's first sample.
        w = 0.5 - 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)
        out[:, -fade:] = out[:, -fade:] * (1 - w) + stretched[:, start - fade : start] * w
    return out


def phase_vocoder(
    frames: np.ndarray,
    sample_rate: int,
    stretch: float,
    *,
    n_fft: int,
    lock_phases: bool = True,
    reset_onsets: bool = True,
) -> np.ndarray:
    """``[channels, n]`` audio lasting ``stretch`` times as long at the same pitch (the length
    is approximate: ``n * stretch`` plus up to a window). ``lock_phases`` and ``reset_onsets``
    off give the textbook vocoder, kept for the benchmark's comparison."""
    channels, n = frames.shape
    quarter = n_fft // OVERLAP
    # The denser side takes a quarter-window hop; the synthesis hop is an integer so frames
    # land on whole samples, and analysis frames are read at the nearest whole sample.
    hop_out = quarter if stretch >= 1 else max(1, round(quarter * stretch))
    hop_in = hop_out / stretch
    count = int(n / hop_in) + 2
    read_at = np.round(np.arange(count) * hop_in).astype(np.int64)
    half = n_fft // 2
    padded = np.pad(frames, ((0, 0), (half, half + n_fft)))
    state = _Vocoder(
        views=np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=1),
        read_at=read_at,
        window=np.hanning(n_fft + 1)[:n_fft],  # periodic Hann
        hop_out=hop_out,
        lag=max(1, round(quarter / hop_in)),
        lock_from=math.ceil(LOCK_FROM_HZ * n_fft / sample_rate) if lock_phases else None,
        reset_onsets=reset_onsets,
    )
    length = (count - 1) * hop_out + n_fft
    out = np.zeros((channels, length))
    gain = np.zeros(length)
    square = state.window**2
    for first in range(0, count, CHUNK_FRAMES):
        stop = min(first + CHUNK_FRAMES, count)
        pieces = state.synthesize(first, stop)
        for i, at in enumerate(range(first * hop_out, stop * hop_out, hop_out)):
            out[:, at : at + n_fft] += pieces[:, i]
            gain[at : at + n_fft] += square
    out /= np.maximum(gain, 1e-3 * float(gain.max()))
    return out[:, half:]


class _Vocoder:
    """The phase vocoder's pass over frames, a chunk at a time, carrying the phases across."""

    def __init__(
        self,
        *,
        views: np.ndarray,
        read_at: np.ndarray,
        window: np.ndarray,
        hop_out: int,
        lag: int,
        lock_from: int | None,
        reset_onsets: bool,
    ) -> None:
        self.views, self.read_at, self.window = views, read_at, window
        self.hop_out, self.lag, self.lock_from = hop_out, lag, lock_from
        self.reset_onsets = reset_onsets
        n_fft = window.shape[0]
        self.omega = 2 * np.pi * np.arange(n_fft // 2 + 1) / n_fft  # radians a sample, per bin
        self.phase_in: np.ndarray | None = None  # the analysis phases of the last frame done
        self.phase_out: np.ndarray | None = None  # its synthesis phases (before locking)
        self.level_mean: float | None = None

    def synthesize(self, first: int, stop: int) -> np.ndarray:
        """Frames ``first..stop`` turned to their new phases, windowed: ``[channels, frames,
        n_fft]``."""
        count, lag = self.read_at.shape[0], self.lag
        # Context frames: ``lag`` after, for the onset test's look around, and ``2 * lag``
        # before, for its look back from those around: onsets come out as for the whole clip.
        lo, hi = max(0, first - 2 * lag), min(count, stop + lag)
        spectra = np.fft.rfft(self.views[:, self.read_at[lo:hi]] * self.window, axis=2)
        mix = spectra.sum(axis=0) if spectra.shape[0] > 1 else spectra[0]
        magnitude = np.abs(spectra).sum(axis=0) if spectra.shape[0] > 1 else np.abs(mix)
        magnitude = magnitude.astype(np.float32)
        if self.level_mean is None:  # the first chunk's level stands for the clip's
            self.level_mean = float(magnitude.sum(axis=1).mean())
        core = slice(first - lo, stop - lo)
        if self.reset_onsets:
            resets = _onsets(magnitude, lag, self.level_mean)[core]
        else:
            resets = np.zeros(stop - first, dtype=bool)
        spectra, mix, magnitude = spectra[:, core], mix[core], magnitude[core]
        phase_in = np.angle(mix)
        # Row 0 is the frame before the chunk: its synthesis phases are where this one goes on
        # from (the clip's first frame starts from its own analysis phases).
        if self.phase_in is None or self.phase_out is None:
            before_in, before_out = phase_in[0], phase_in[0]
        else:
            before_in, before_out = self.phase_in, self.phase_out
        chained = np.concatenate([before_in[None], phase_in])
        # Instantaneous frequency from the phase change over each frame's actual read hop.
        t = np.arange(first, stop)
        steps = (self.read_at[t] - self.read_at[np.maximum(t - 1, 0)]).astype(np.float64)
        steps = np.maximum(steps, 1.0)[:, None]  # the clip's first frame: no change at all
        deviation = np.diff(chained, axis=0) - self.omega * steps
        deviation -= 2 * np.pi * np.round(deviation / (2 * np.pi))
        advance = (self.omega + deviation / steps) * self.hop_out
        if first == 0:
            advance[0] = 0.0
        total = np.concatenate([np.zeros((1, advance.shape[1])), np.cumsum(advance, axis=0)])
        # phase_out[t] = start[r] + total[t] - total[r], r the last reset at or before t (row
        # 0, the frame before the chunk, counts as one: its synthesis phases are the start).
        starts = np.concatenate([before_out[None], phase_in])
        is_reset = np.concatenate([[True], resets])
        last = np.maximum.accumulate(np.where(is_reset, np.arange(is_reset.shape[0]), 0))
        phase_out = (starts[last] + total - total[last])[1:]
        self.phase_in, self.phase_out = phase_in[-1], phase_out[-1]
        rotation = phase_out - phase_in
        # Wrapped, the angles fit float32, whose cos and sin run several times faster.
        rotation = (rotation - 2 * np.pi * np.round(rotation / (2 * np.pi))).astype(np.float32)
        if self.lock_from is not None:
            peaks = _peak_of_bin(magnitude, self.lock_from)
            rotation = np.take_along_axis(rotation, peaks, axis=1)
        turn = np.empty(rotation.shape, dtype=np.complex64)
        turn.real, turn.imag = np.cos(rotation), np.sin(rotation)
        n_fft = self.window.shape[0]
        pieces: np.ndarray = np.fft.irfft(spectra * turn[None], n=n_fft, axis=2) * self.window
        return pieces


def _onsets(magnitude: np.ndarray, lag: int, level_mean: float) -> np.ndarray:
    """Frames where a large share of the spectrum is new since ``lag`` frames before (a hit),
    each the strongest of its neighbourhood, and louder than ``ONSET_FLOOR * level_mean``."""
    before = magnitude[np.maximum(np.arange(magnitude.shape[0]) - lag, 0)]
    rise = np.maximum(magnitude - before, 0.0).sum(axis=1)
    level = magnitude.sum(axis=1)
    novelty = rise / np.maximum(level, 1e-12)
    strong = (novelty >= ONSET_NOVELTY) & (level >= ONSET_FLOOR * level_mean)
    # Only the frame of largest rise among its neighbours: one reset a hit.
    width = 2 * lag + 1
    padded = np.pad(rise, lag, constant_values=-1.0)
    local_max = np.lib.stride_tricks.sliding_window_view(padded, width).max(axis=1)
    found: np.ndarray = strong & (rise >= local_max)
    return found


def _peak_of_bin(magnitude: np.ndarray, from_bin: int) -> np.ndarray:
    """For every frame and bin, the nearest spectral peak's bin: ``[frames, bins]`` indices
    (a bin below ``from_bin``, or of a frame without peaks, is its own)."""
    bins = magnitude.shape[1]
    k = PEAK_NEIGHBOURS
    padded = np.pad(magnitude, ((0, 0), (k, k)), constant_values=-1.0)
    peak = np.ones_like(magnitude, dtype=bool)
    for d in range(1, k + 1):
        peak &= magnitude > padded[:, k - d : k - d + bins]
        peak &= magnitude >= padded[:, k + d : k + d + bins]
    index = np.arange(bins, dtype=np.int32)
    below = np.maximum.accumulate(np.where(peak, index, np.int32(-1)), axis=1)
    after = np.where(peak, index, np.int32(2 * bins))[:, ::-1]
    above = np.minimum.accumulate(after, axis=1)[:, ::-1]
    use_above = (below < 0) | ((above < bins) & (above - index < index - below))
    nearest = np.where(use_above, above, below)
    nearest = np.where((nearest < 0) | (nearest >= bins), index, nearest)
    peak_of_bin: np.ndarray = np.where(index < from_bin, index, nearest)
    return peak_of_bin
