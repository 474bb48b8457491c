"""Loop or one-shot from evidence, not from length alone; every payload says what decided."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ingest.metadata import MetadataRules
from ingest.options import Limits
from ingest.workers import prepare
from tests.support.audio_factory import crash, strum, write
from tests.support.synthetic_music import chord_loop, drum_loop, noise_loop, one_shot
from timbre.audio.analysis import measure_envelope
from timbre.settings import load_settings

SR = 44100
LIMITS = Limits(sample_rate=24000, max_duration_s=600, max_file_bytes=1 << 30)


@pytest.fixture(scope="module")
def rules() -> MetadataRules:
    return MetadataRules.from_settings(load_settings().ingest)


def _kind(path: Path, rules: MetadataRules, root: Path | None = None) -> tuple[Any, Any]:
    found = [(str(path), str(root or path.parent))]
    item = prepare("0" * 64, found, LIMITS, rules, False)
    assert item.failure is None, item.failure
    return item.payload["kind"], item.payload["kind_source"]


@pytest.mark.parametrize(
    ("name", "sound"),
    [
        ("take_1.wav", crash(4.0)),  # a 4 s crash cymbal
        ("take_2.wav", crash(12.0, seed=1)),  # a 12 s ride left to ring
        ("take_3.flac", strum(6.0)),  # a 6 s guitar strum
    ],
)
def test_long_sounds_that_decay_are_one_shots(
    tmp_path: Path, rules: MetadataRules, name: str, sound: np.ndarray
) -> None:
    assert _kind(write(tmp_path / name, sound, SR), rules) == ("one_shot", "audio")


def test_a_drum_loop_is_a_loop_by_its_sound(tmp_path: Path, rules: MetadataRules) -> None:
    path = write(tmp_path / "take_4.wav", drum_loop(124, 4, SR, seed=4), SR)
    assert _kind(path, rules) == ("loop", "audio")


def test_a_short_hit_in_a_folder_named_breaks_is_a_one_shot(
    tmp_path: Path, rules: MetadataRules
) -> None:
    """Kit folders are loose: Hydrogen's "VariBreaks" holds single 0.1-0.6 s hits."""
    path = write(tmp_path / "VariBreaks" / "VP Kick 1.wav", one_shot("kick", SR), SR)
    assert _kind(path, rules, tmp_path)[0] == "one_shot"


def test_names_and_tags_decide_before_the_sound(tmp_path: Path, rules: MetadataRules) -> None:
    ringing = crash(5.0)
    assert _kind(write(tmp_path / "Crash_Loop.wav", ringing, SR), rules) == ("loop", "name")
    loop = drum_loop(124, 4, SR, seed=5)
    assert _kind(write(tmp_path / "Beat One Shot.wav", loop, SR), rules) == ("one_shot", "name")
    acid = write(tmp_path / "take_5.wav", ringing, SR)
    _add_acid(acid, one_shot=False, bpm=96.0)
    assert _kind(acid, rules) == ("loop", "tags")
    blank = write(tmp_path / "take_8.wav", ringing, SR)
    _add_acid(blank, one_shot=False)  # a chunk with blank fields claims nothing
    assert _kind(blank, rules) == ("one_shot", "audio")
    flagged = write(tmp_path / "take_9.wav", drum_loop(124, 4, SR, seed=6), SR)
    _add_acid(flagged, one_shot=True)
    assert _kind(flagged, rules) == ("one_shot", "tags")


def test_a_held_sound_with_no_pulse_falls_to_its_length(
    tmp_path: Path, rules: MetadataRules
) -> None:
    bed = write(tmp_path / "take_6.wav", noise_loop(8.0, SR), SR)
    assert _kind(bed, rules) == ("loop", "duration")
    pad = write(tmp_path / "Loops" / "take_7.wav", chord_loop("C", 120, 1, SR), SR)
    assert _kind(pad, rules, tmp_path) == ("loop", "name")


def test_envelopes_of_hits_and_loops() -> None:
    hit = measure_envelope(crash(4.0), SR)
    assert hit is not None and hit.decays and not hit.repeats
    loop = measure_envelope(drum_loop(124, 4, SR), SR)
    assert loop is not None and loop.repeats and not loop.decays
    held = measure_envelope(noise_loop(6.0, SR), SR)
    assert held is not None and not held.decays and not held.repeats
    assert measure_envelope(np.zeros(SR, dtype=np.float32), SR) is None


def _add_acid(path: Path, *, one_shot: bool, bpm: float = 0.0) -> None:
    """Append an ACID chunk (flags, root note, beats, meter, tempo) as loop editors write."""
    body = struct.pack("<IHHfIHHf", int(one_shot), 60, 0, 0.0, 8, 4, 4, bpm)
    data = path.read_bytes() + b"acid" + struct.pack("<I", len(body)) + body
    path.write_bytes(data[:4] + struct.pack("<I", len(data) - 8) + data[8:])
