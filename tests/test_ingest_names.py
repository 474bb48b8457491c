"""What names say: BPM, key, instrument, genre, loop or one-shot, in producers' conventions."""

from __future__ import annotations

import pytest

from ingest.names import Vocabulary, guess_kind, parse_bpm, parse_key, tokens
from timbre.musickey import normalize_key


@pytest.mark.parametrize(
    ("name", "bpm"),
    [
        ("Bass_Loop_124bpm_Am", 124.0),
        ("Drum Loop 124 BPM", 124.0),
        ("bpm_95_break", 95.0),
        ("BPM128 Top", 128.0),
        ("Loop_124_Am_Bass", 124.0),
        ("Groove - 90 - Dusty", 90.0),
        ("174.5bpm dnb roller", 174.5),
        ("Kick_808_Punchy", None),  # a drum machine, not a tempo
        ("Snare_03", None),
        ("Kick_100", None),  # a sample number at the end is not a tempo
        ("Pad 300bpm", None),  # implausible
    ],
)
def test_bpm(name: str, bpm: float | None) -> None:
    assert parse_bpm(name) == bpm


def test_bpm_falls_back_to_folders() -> None:
    assert parse_bpm("Hat_Loop_01", "Loops 126 BPM") == 126.0


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Bass_Loop_124bpm_Am", "Am"),
        ("Pad F#min 90", "F#m"),
        ("Chord C major", "C"),
        ("Lead_Cmaj_128", "C"),
        ("Pluck Ebm", "Ebm"),
        ("Keys Bb", "Bb"),
        ("Synth G# minor", "G#m"),
        ("Piano A Minor", "Am"),
        ("Key of D", "D"),
        ("Kick A", None),  # a variation label, not a key
        ("Bass_Drum_01", None),
        ("Amp Noise", None),
        ("Drum Fill", None),
        ("Embers Texture", None),
    ],
)
def test_key(name: str, key: str | None) -> None:
    assert parse_key(name) == key


@pytest.mark.parametrize(
    ("text", "key"), [("F# minor", "F#m"), ("Bbm", "A#m"), ("c", "C"), ("H", None)]
)
def test_normalize_key(text: str, key: str | None) -> None:
    assert normalize_key(text) == key


def test_tokens_split_camel_case_and_digits() -> None:
    assert tokens("ClosedHat_808Kick-01") == ["closed", "hat", "808", "kick", "01"]


INSTRUMENTS = Vocabulary.from_mapping(
    {
        "kick": ["kik", "bd"],
        "hat": ["hihat", "hi hat", "hh"],
        "snare": ["snr"],
        "bass": [],
        "sub": ["808 sub"],
    }
)


@pytest.mark.parametrize(
    ("names", "instrument"),
    [
        (("Punchy_Kick_01",), "kick"),
        (("ClosedHat_02",), "hat"),
        (("HiHat Open",), "hat"),
        (("hi-hat_closed",), "hat"),
        (("Tight 01", "Snares"), None),  # plural folder: not in this vocabulary
        (("Tight 01", "Snr"), "snare"),
        (("808 Sub Boom",), "sub"),  # the longer phrase wins
        (("Bass_Loop",), "bass"),
        (("Texture",), None),
    ],
)
def test_vocabulary(names: tuple[str, ...], instrument: str | None) -> None:
    assert INSTRUMENTS.find(*names) == instrument


@pytest.mark.parametrize(
    ("names", "duration", "bpm", "kind"),
    [
        (("Kick_01",), 0.4, None, "one_shot"),
        (("Drum_Loop_124",), 0.9, 124.0, "loop"),  # the name decides
        (("Chord One Shot",), 3.0, None, "one_shot"),
        (("Pad",), 7.741935, 124.0, "loop"),  # 16 beats at 124 BPM
        (("Riser",), 3.3, None, "one_shot"),
        (("Atmos",), 12.0, None, "loop"),
    ],
)
def test_kind(names: tuple[str, ...], duration: float, bpm: float | None, kind: str) -> None:
    assert guess_kind(names, duration, bpm) == kind
