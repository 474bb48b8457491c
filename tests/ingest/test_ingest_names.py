"""What names say: BPM, key, instrument, genre, loop or one-shot, in producers' conventions."""

from __future__ import annotations

import pytest

from ingest.metadata import MetadataRules, decide_kind
from ingest.names import Vocabulary, parse_bpm, parse_key, tokens
from timbre.musickey import normalize_key
from timbre.settings import load_settings


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
        ("Gsharp minor7b5_DOWN_02", "G#m"),  # spelled sharp, then a chord suffix after the mode
        ("Bminor7b5_UP_02", "Bm"),
        ("Eflat major", "Eb"),
        ("F sharp min", "F#m"),
        ("F-sharp minor", "F#m"),
        ("Bbmin7", "Bbm"),
        ("C#m7b5", "C#m"),
        ("Cmaj7 Pad", "C"),
        ("Csharp minor_UP_00", "C#m"),
        ("Amen Break", None),  # ordinary words are no keys
        ("Dance Loop", None),
        ("Bass Fx", None),
        ("FM_Bass", None),  # synthesis, not F major
        ("AM Radio", None),
        ("Piano C#4", None),  # a note and its octave
        ("Gsus4 Strum", None),  # a chord without a mode names no key
    ],
)
def test_key(name: str, key: str | None) -> None:
    assert parse_key(name) == key


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("F# minor", "F#m"),
        ("Bbm", "A#m"),
        ("c", "C"),
        ("H", None),
        ("F sharp minor", "F#m"),
        ("E-flat", "D#"),
    ],
)
def test_normalize_key(text: str, key: str | None) -> None:
    assert normalize_key(text) == key


def test_tokens_split_camel_case_and_digits() -> None:
    assert tokens("ClosedHat_808Kick-01") == ["closed", "hat", "808", "kick", "01"]
    assert tokens("HHClosed_PowR") == ["hh", "closed", "pow", "r"]


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


@pytest.fixture(scope="module")
def rules() -> MetadataRules:
    """The shipped vocabularies (config/default.yaml)."""
    return MetadataRules.from_settings(load_settings().ingest)


@pytest.mark.parametrize(
    ("names", "genre"),
    [
        (("belofilms_strum_01", "belofilms_GuitarStrums"), None),  # "lofi" inside a word
        (("PowR_BD_1", "HardElectro1"), None),  # "r" + "bd" is no "rb"
        (("LoFi_HipHop_Drums",), "hip hop"),
        (("Kick", "Deep House"), "house"),
        (("Kick", "deephouse"), "house"),  # a phrase written as one word
        (("Kick", "Hip-Hop"), "hip hop"),
        (("Roller", "DnB Rollers"), "drum and bass"),  # mixed case, read whole
        (("Vox", "RnB Vocals"), "rnb"),
        (("Trapdoor Creak",), None),  # a genre word inside a longer word
        (("Poppy Pluck",), None),
        (("Atrap_Hit",), None),
    ],
)
def test_genres_are_whole_words(
    rules: MetadataRules, names: tuple[str, ...], genre: str | None
) -> None:
    assert rules.genres.find(*names) == genre


@pytest.mark.parametrize(
    ("names", "instrument"),
    [
        (("PowR_BD_1",), "kick"),
        (("SN_06",), "snare"),
        (("CB_01",), "cowbell"),
        (("BL_03",), "bell"),
        (("HH2_05",), "hat"),
        (("TM2_01",), "tom"),
        (("RD_04",), "cymbal"),
        (("mc_cb",), "cowbell"),
        (("hihat_open",), "hat"),
        (("closehihat3",), "hat"),  # a compound of a modifier and a vocabulary word
        (("openhat2",), "hat"),
        (("floortom_01",), "tom"),
        (("bassdrum-4mics",), "kick"),
        (("Hard_Hse_OHH_1",), "hat"),
        (("Djembe1 Bass",), "djembe"),  # the first word names it, not the later "bass"
        (("CB_Bell",), "cowbell"),
        (("Dununba1 Bell Mute",), "dunun"),
        (("RideBell-2",), "cymbal"),
        (("EE_Conga_1",), "conga"),
        (("Tambourine-3",), "tambourine"),
        (("Maraca-Soft",), "shaker"),
        (("Club_Chords_01",), "chord"),  # "cl" inside "Club" is nothing
        (("Club_Vibes",), None),
        (("TB303_Acid",), None),  # a synth's model, not a tambourine
        (("SH101 Lead",), "lead"),
        (("Sub_Kick",), "sub"),
        (("Tight 01", "Snares"), "snare"),
        (("Guitar_Strum_01",), "guitar"),
        (("Fsharp major_02", "belofilms_GuitarStrums"), "guitar"),
        (("Blip_Blop",), None),
        (("Shaun_Vox",), "vocal"),
    ],
)
def test_instrument_abbreviations_and_world_percussion(
    rules: MetadataRules, names: tuple[str, ...], instrument: str | None
) -> None:
    assert rules.instruments.find(*names) == instrument


@pytest.mark.parametrize(
    ("stem", "instrument"),
    [
        ("Oh Yeah", None),  # a vocal chop, not an open hat
        ("oh_no_vocal", "vocal"),
        ("Sh_whisper", None),
        ("OH_01", "hat"),  # the kit maker's capitals
        ("909 OH", "hat"),
        ("oh 2", "hat"),  # right before a number
        ("SH_02", "shaker"),
    ],
)
def test_abbreviations_that_are_everyday_words_need_capitals_or_a_number(
    rules: MetadataRules, stem: str, instrument: str | None
) -> None:
    assert rules.instruments.find(stem) == instrument


def test_drums_named_by_abbreviation_are_unpitched(rules: MetadataRules) -> None:
    for stem in ("SN_06", "CB_01", "PowR_BD_1", "HH_02", "Djembe1 Slap", "Clave-Hard"):
        assert rules.instruments.find(stem) in rules.unpitched, stem


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
    assert decide_kind(names, duration, bpm=(bpm, "name"))[0] == kind
