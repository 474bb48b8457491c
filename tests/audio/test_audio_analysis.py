"""Tempo and key from the audio, measured on synthetic loops with known answers.

The loops are written to files at the sample rates libraries use and decoded the way ingest
decodes them (mono, resampled to the model rate), under neutral names: only the sound speaks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support.audio_factory import write
from tests.support.synthetic_music import (
    chord_loop,
    drum_loop,
    noise_loop,
    one_shot,
    parse_test_key,
)
from timbre.audio.analysis import ANALYSIS_VERSION, analyse
from timbre.audio.decode import decode_file
from timbre.audio.key import MAJOR_SPELLING, MINOR_SPELLING, estimate_key, key_name
from timbre.audio.peaks import PEAK_BUCKETS, decode_peaks
from timbre.audio.tempo import estimate_tempo
from timbre.musickey import normalize_key

MODEL_SR = 24000


def _decoded(tmp_path: Path, samples: np.ndarray, sr: int, ext: str = "wav"):  # type: ignore[no-untyped-def]
    path = write(tmp_path / f"take_{len(list(tmp_path.iterdir())):03d}.{ext}", samples, sr)
    return decode_file(path, sample_rate=MODEL_SR, max_duration_s=600, max_file_bytes=1 << 30)


# -- tempo ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bpm", "pattern", "sr", "bars"),
    [
        (90, "four_on_the_floor", 44100, 4),
        (124, "four_on_the_floor", 48000, 8),
        (140, "four_on_the_floor", 44100, 4),
        (174, "four_on_the_floor", 96000, 8),
        (128, "techno", 44100, 2),
        (90, "boom_bap", 44100, 4),
        (86, "boom_bap", 48000, 2),
        (174, "two_step", 44100, 8),
        (140, "half_time", 48000, 4),
        (132, "breakbeat", 44100, 4),
    ],
)
def test_drum_loop_tempo_is_the_producers_bpm(
    tmp_path: Path, bpm: int, pattern: str, sr: int, bars: int
) -> None:
    audio = _decoded(tmp_path, drum_loop(bpm, bars, sr, pattern=pattern, seed=bpm), sr)
    found = estimate_tempo(audio.samples, audio.sample_rate, audio.duration_s)
    assert found is not None
    assert abs(found.bpm - bpm) <= 1.5, found  # octave errors fail here too
    # Cut to whole bars at an integer tempo, the length gives the exact BPM.
    assert found.bpm == bpm and found.bars == bars
    assert 0.3 <= found.confidence <= 1.0


@pytest.mark.parametrize(
    ("bpm", "pattern", "bars", "sr"),
    [(97, "boom_bap", 4, 44100), (150, "four_on_the_floor", 1, 48000)],
)
def test_swing_and_human_timing_keep_the_tempo(
    tmp_path: Path, bpm: int, pattern: str, bars: int, sr: int
) -> None:
    loop = drum_loop(bpm, bars, sr, pattern=pattern, swing=0.3, jitter_ms=3, seed=21)
    audio = _decoded(tmp_path, loop, sr)
    found = estimate_tempo(audio.samples, audio.sample_rate, audio.duration_s)
    assert found is not None and found.bpm == bpm


def test_a_clip_that_is_not_whole_bars_gets_the_combs_estimate(tmp_path: Path) -> None:
    """A loop with a reverb tail: no whole-bar length to refine by; the comb alone holds."""
    loop = drum_loop(140, 4, 44100, seed=3)
    tail = np.zeros(round(0.37 * 44100), dtype=np.float32)
    audio = _decoded(tmp_path, np.concatenate([loop, tail]), 44100)
    found = estimate_tempo(audio.samples, audio.sample_rate, audio.duration_s)
    assert found is not None and found.bars is None
    assert abs(found.bpm - 140) <= 1.5
    fitted = estimate_tempo(*_rate(_decoded(tmp_path, loop, 44100)))
    assert fitted is not None and found.confidence < fitted.confidence


def _rate(audio):  # type: ignore[no-untyped-def]
    return audio.samples, audio.sample_rate, audio.duration_s


@pytest.mark.parametrize(
    "samples",
    [
        pytest.param(noise_loop(8.0, MODEL_SR), id="noise"),
        pytest.param(one_shot("kick", MODEL_SR), id="kick one-shot"),
        pytest.param(np.zeros(MODEL_SR * 4, dtype=np.float32), id="silence"),
        pytest.param(chord_loop("Dm", 120, 4, MODEL_SR, seed=2), id="held chords"),
    ],
)
def test_no_pulse_no_tempo(samples: np.ndarray) -> None:
    assert estimate_tempo(samples, MODEL_SR) is None


# -- key --------------------------------------------------------------------------------------

KEYS = [
    ("C", 44100), ("G", 48000), ("D", 44100), ("A", 22050), ("E", 44100), ("F#", 48000),
    ("Db", 44100), ("Ab", 48000), ("Eb", 44100), ("Bb", 96000), ("F", 44100),
    ("Am", 44100), ("Em", 48000), ("Bm", 44100), ("F#m", 44100), ("C#m", 48000),
    ("G#m", 44100), ("Dm", 22050), ("Gm", 44100), ("Cm", 48000), ("Fm", 44100),
    ("Bbm", 44100), ("Ebm", 48000),
]  # fmt: skip


@pytest.mark.parametrize(("key", "sr"), KEYS)
def test_chord_loop_key_is_exact(tmp_path: Path, key: str, sr: int) -> None:
    i = KEYS.index((key, sr))
    loop = chord_loop(key, 120, 4, sr, progression=i % 4, seed=i, stabs=i % 2 == 1)
    audio = _decoded(tmp_path, loop, sr, ext="flac")
    found = estimate_key(audio.samples, audio.sample_rate)
    assert found is not None, key
    assert found.key == key  # the spelling producers write, flats included
    assert 0.0 < found.confidence <= 1.0


def test_key_over_drums_is_still_found(tmp_path: Path) -> None:
    chords = chord_loop("Gm", 124, 4, 44100, progression=1, seed=4)
    drums = drum_loop(124, 4, 44100, seed=4)
    audio = _decoded(tmp_path, 0.7 * chords + 0.3 * drums, 44100)
    found = estimate_key(audio.samples, audio.sample_rate)
    assert found is not None and found.key == "Gm"


@pytest.mark.parametrize(
    "samples",
    [
        pytest.param(drum_loop(124, 4, MODEL_SR, seed=1), id="four-on-the-floor"),
        pytest.param(drum_loop(174, 4, MODEL_SR, pattern="two_step", seed=2), id="two-step"),
        pytest.param(noise_loop(6.0, MODEL_SR), id="noise"),
        pytest.param(one_shot("kick", MODEL_SR), id="kick"),
        pytest.param(one_shot("snare", MODEL_SR), id="snare"),
        pytest.param(one_shot("pluck", MODEL_SR, seed=3), id="a single note"),
    ],
)
def test_unpitched_or_modeless_material_gets_no_key(samples: np.ndarray) -> None:
    assert estimate_key(samples, MODEL_SR) is None


def test_every_detected_spelling_is_conventional_and_parses_to_its_pitch_class() -> None:
    assert MAJOR_SPELLING == ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
    assert MINOR_SPELLING[3] == "Ebm" and MINOR_SPELLING[8] == "G#m" and MINOR_SPELLING[10] == "Bbm"
    for tonic in range(12):
        for minor in (False, True):
            name = key_name(tonic, minor)
            assert parse_test_key(name) == (tonic, minor)
            assert normalize_key(name) is not None  # filters and companions read it


# -- the pass ingest runs ---------------------------------------------------------------------


def test_analyse_gives_peaks_always_and_only_the_estimates_asked() -> None:
    loop = drum_loop(124, 2, MODEL_SR, seed=0)
    heard = analyse(loop, MODEL_SR, tempo=False, key=False)
    assert heard.tempo is None and heard.key is None
    assert heard.version == ANALYSIS_VERSION
    assert decode_peaks(heard.peaks).shape == (PEAK_BUCKETS,)
    full = analyse(loop, MODEL_SR)
    assert full.tempo is not None and full.tempo.bpm == 124 and full.peaks == heard.peaks
    with pytest.raises(ValueError):
        analyse(np.array([np.nan], dtype=np.float32), MODEL_SR)
