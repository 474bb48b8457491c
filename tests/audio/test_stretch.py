"""Matched renditions' audio: tempo and key moved as asked, measured by Timbre's own detectors
on synthetic loops with known answers; loops that still loop; stereo kept; bad input refused."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.support.synthetic_music import chord_loop, drum_loop, parse_test_key
from timbre.audio import stretch
from timbre.audio.key import estimate_key, key_name
from timbre.audio.stretch import match, phase_vocoder, stretch_factor
from timbre.audio.tempo import estimate_tempo

SR = 44100


def _mono(samples: np.ndarray) -> np.ndarray:
    return samples.mean(axis=1) if samples.ndim == 2 else samples


def _peak_hz(samples: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.shape[0])))
    i = int(np.argmax(spectrum))
    a, b, c = np.log(spectrum[i - 1 : i + 2] + 1e-12)
    return float((i + 0.5 * (a - c) / (a - 2 * b + c)) * sr / samples.shape[0])


# -- tempo ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "project", "pattern", "played"),
    [
        (120, 124, "four_on_the_floor", 124),
        (128, 120, "boom_bap", 120),
        (90, 100, "four_on_the_floor", 100),
        (100, 75, "boom_bap", 75),
        (120, 170, "four_on_the_floor", 85),  # 170 is 1.42x away, its half 1.41x: half time
        (140, 70, "two_step", 140),  # plays at twice the project's tempo: unchanged
    ],
)
def test_the_rendition_plays_at_the_project_tempo(
    source: int, project: int, pattern: str, played: int
) -> None:
    left = drum_loop(source, 4, SR, pattern=pattern, seed=1)
    right = drum_loop(source, 4, SR, pattern=pattern, seed=2)  # other hits, same grid
    loop = np.stack([left, right], axis=1)
    ratio = stretch_factor(source, project)
    out = match(loop, SR, ratio=ratio, semitones=0)
    assert out.shape == (round(loop.shape[0] * ratio), 2) and out.dtype == np.float32
    found = estimate_tempo(_mono(out), SR)
    assert found is not None
    assert found.bpm == pytest.approx(played, rel=0.01)
    # The comb's own reading, before the clip's length snaps it to whole bars.
    assert found.comb_bpm == pytest.approx(played, rel=0.01)


def test_hits_land_on_the_new_grid() -> None:
    """Each kick of a four-on-the-floor loop starts where the new tempo puts it (±5 ms)."""
    loop = drum_loop(120, 2, SR, pattern="techno", seed=4)
    out = match(loop, SR, ratio=120 / 126, semitones=0)
    beat = round(SR * 60 / 126)
    hop = SR // 1000
    energy = np.convolve(out.astype(np.float64) ** 2, np.ones(hop), mode="same")
    for n in range(1, 8):  # each beat: the rise of energy comes within 5 ms of the grid
        window = energy[n * beat - 20 * hop : n * beat + 20 * hop]
        rise = int(np.argmax(np.diff(window))) - 20 * hop
        assert abs(rise) <= 5 * hop, f"beat {n} at {rise / hop:+.1f} ms"


# -- key ------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["C", "Am", "F#m", "Eb"])
@pytest.mark.parametrize("semitones", [-5, -2, 3, 7])
def test_the_key_moves_by_the_semitones_asked(key: str, semitones: int) -> None:
    loop = chord_loop(key, 120, 4, SR, seed=2)
    tonic, minor = parse_test_key(key)
    out = match(loop, SR, ratio=1.0, semitones=semitones)
    assert out.shape == loop.shape
    found = estimate_key(out, SR)
    assert found is not None and found.key == key_name(tonic + semitones, minor)


def test_tempo_and_key_move_together() -> None:
    loop = chord_loop("Dm", 120, 4, SR, seed=1, stabs=True)
    out = match(loop, SR, ratio=stretch_factor(120, 124), semitones=-2)
    assert out.shape[0] == round(loop.shape[0] * 120 / 124)
    found = estimate_key(out, SR)
    assert found is not None and found.key == "Cm"


@pytest.mark.parametrize(("ratio", "semitones"), [(1.0, 3), (1.0, -12), (0.8, 0), (1.25, 5)])
def test_a_tone_keeps_or_moves_its_pitch_exactly(ratio: float, semitones: int) -> None:
    tone = 0.5 * np.sin(2 * np.pi * 440.0 * np.arange(SR * 2) / SR)
    out = match(tone, SR, ratio=ratio, semitones=semitones)
    want = 440.0 * 2 ** (semitones / 12)
    assert _peak_hz(out, SR) == pytest.approx(want, rel=0.002)  # 3.5 cents
    # Its level holds: no gain from the overlap-add, no loss from the resampling.
    assert np.sqrt(np.mean(out[SR // 2 : -SR // 2] ** 2)) == pytest.approx(0.5 / math.sqrt(2), 0.05)


# -- loops ----------------------------------------------------------------------------------


def _seamless_pad(n: int, sr: int) -> np.ndarray:
    """Held partials that each complete whole cycles in ``n`` samples: a loop without a seam."""
    t = np.arange(n) / n
    partials = [round(f * n / sr) for f in (110.0, 220.5, 330.7, 440.2)]
    pad = np.zeros(n)
    for k in partials:
        pad += 0.08 * np.sin(2 * np.pi * k * t + k)
    return pad.astype(np.float32)


def _wrap_jump(loop: np.ndarray, around: int) -> tuple[float, float]:
    """Largest sample-to-sample step within ``around`` samples of the wrap point (the loop
    played twice), and the largest step anywhere else."""
    steps = np.abs(np.diff(np.concatenate([loop, loop])))
    n = loop.shape[0]
    return float(steps[n - around : n + around].max()), float(steps[around : n - around].max())


@pytest.mark.parametrize(
    ("ratio", "semitones"), [(120 / 124, 0), (128 / 120, 0), (0.9, 3), (1.0, -2)]
)
def test_the_loop_runs_from_its_end_into_its_start_without_a_click(
    ratio: float, semitones: int
) -> None:
    loop = _seamless_pad(round(4 * 60 / 120 * SR), SR)  # a bar at 120
    assert _wrap_jump(loop, 441)[0] <= 1.01 * _wrap_jump(loop, 441)[1]  # seamless to begin with
    out = match(loop, SR, ratio=ratio, semitones=semitones)
    at_wrap, elsewhere = _wrap_jump(out, 441)
    assert at_wrap <= 1.1 * elsewhere
    # What the circle and the cross-fade are for: the same vocoder on the clip as a line
    # jumps at its wrap, several times the largest step of the music itself.
    if semitones == 0:
        line = phase_vocoder(loop[None].astype(np.float64), SR, ratio, n_fft=2048)[0]
        line_wrap, line_elsewhere = _wrap_jump(line[: out.shape[0]], 441)
        assert line_wrap > 2 * line_elsewhere


def test_a_one_shot_keeps_its_attack_at_the_start_and_its_silence_at_the_end() -> None:
    """A hit at sample 0, processed as a line: as a loop, the vocoder's smear of the attack
    (what precedes it in a circle) would reach the end through the loop's cross-fade."""
    hit = np.zeros(SR, np.float32)
    hit[: SR // 4] = np.sin(2 * np.pi * 200 * np.arange(SR // 4) / SR) * np.exp(
        -np.arange(SR // 4) / SR * 20
    )
    out = match(hit, SR, ratio=1.0, semitones=-3, loop=False)
    ms = SR // 1000
    assert np.abs(out[: 10 * ms]).max() > 0.5  # the attack is still in the first 10 ms
    assert np.abs(out[SR // 2 :]).max() < 0.01  # and the silence after the hit stays silent
    assert np.abs(match(hit, SR, ratio=1.0, semitones=-3)[-ms:]).max() > 0.01  # as a loop


# -- channels and shapes ----------------------------------------------------------------------


def test_stereo_keeps_each_side_to_itself() -> None:
    n = SR * 2
    t = np.arange(n) / SR
    left = 0.4 * np.sin(2 * np.pi * 330 * t)
    right = 0.4 * np.sin(2 * np.pi * 550 * t)
    out = match(np.stack([left, right], axis=1), SR, ratio=1.1, semitones=2)
    spectra = np.abs(
        np.fft.rfft(out[SR // 4 : -SR // 4] * np.hanning(out.shape[0] - SR // 2)[:, None], axis=0)
    )
    hz = np.fft.rfftfreq(out.shape[0] - SR // 2, 1 / SR)
    up = 2 ** (2 / 12)

    def level(channel: int, f: float) -> float:
        near = np.abs(hz - f) < 10
        return float(spectra[near, channel].max())

    assert level(0, 330 * up) > 1000 * level(0, 550 * up)  # -60 dB of cross-talk at most
    assert level(1, 550 * up) > 1000 * level(1, 330 * up)
    # Identical channels stay identical: a mono source in a stereo file stays centred.
    both = np.stack([left, left], axis=1)
    same = match(both, SR, ratio=0.9, semitones=0)
    assert np.abs(same[:, 0] - same[:, 1]).max() < 1e-6


def test_no_change_asked_gives_the_samples_back() -> None:
    loop = drum_loop(120, 1, SR, seed=1)
    assert np.array_equal(match(loop, SR, ratio=1.0, semitones=0), loop)
    stereo = np.stack([loop, loop * 0.5], axis=1)
    assert np.array_equal(match(stereo, SR, ratio=1.0, semitones=0), stereo)


def test_chunks_give_the_same_audio_as_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = np.stack([drum_loop(120, 2, SR, seed=1), chord_loop("Am", 120, 2, SR)], axis=1)
    whole = match(loop, SR, ratio=0.9, semitones=3)
    monkeypatch.setattr(stretch, "CHUNK_FRAMES", 37)
    assert np.abs(match(loop, SR, ratio=0.9, semitones=3) - whole).max() < 1e-5


@pytest.mark.parametrize("frames", [1, 7, 1000, 44101])
def test_lengths_are_exact_for_any_clip(frames: int) -> None:
    clip = np.random.default_rng(frames).uniform(-0.5, 0.5, frames).astype(np.float32)
    for ratio in (0.5, 0.77, 1.3, 2.0):
        out = match(clip, 48000, ratio=ratio, semitones=-7)
        assert out.shape == (max(1, round(frames * ratio)),) and np.isfinite(out).all()


# -- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratio", "semitones"),
    [(0.49, 0), (2.01, 0), (math.nan, 0), (math.inf, 0), (1.0, 13), (1.0, -13), (1.0, 1.5)],
)
def test_out_of_range_requests_are_refused(ratio: float, semitones: int) -> None:
    with pytest.raises(ValueError, match=r"ratio|semitones"):
        match(np.zeros(1000, np.float32), SR, ratio=ratio, semitones=semitones)


@pytest.mark.parametrize(
    "samples",
    [np.zeros(0, np.float32), np.zeros((10, 2, 2), np.float32), np.array([0.0, np.nan, 0.0])],
)
def test_unusable_samples_are_refused(samples: np.ndarray) -> None:
    with pytest.raises(ValueError, match="samples"):
        match(samples, SR, ratio=1.1, semitones=0)


def test_the_tempo_folds_to_the_nearest_octave() -> None:
    assert stretch_factor(62, 124) == 1.0  # half time: plays unchanged
    assert stretch_factor(140, 70) == 1.0  # double time
    assert stretch_factor(120, 124) == pytest.approx(120 / 124)
    assert stretch_factor(90, 100) == pytest.approx(0.9)
    assert stretch_factor(170, 80) == pytest.approx(170 / 160)  # 160 is nearer than 80
    assert stretch_factor(200, 40) == pytest.approx(2.5)  # beyond an octave: the caller refuses
    assert stretch_factor(120, 5e-324) == math.inf  # the float range's ends: no overflow
    assert stretch_factor(120, 1.7e308) == 0.0
    for bad in ((0, 120), (120, -1), (math.nan, 120), (120, math.inf)):
        with pytest.raises(ValueError):
            stretch_factor(*bad)
