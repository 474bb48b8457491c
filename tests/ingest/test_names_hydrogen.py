"""The name parsers over a real third-party library: Debian's Hydrogen drum kits (15 kits by
many authors), when installed (``apt-get install hydrogen-drumkits``; the guitar strums of
``hydrogen-drumkits-effects`` are read too when present). Skipped elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.metadata import MetadataRules
from timbre.settings import load_settings

KITS = Path("/usr/share/hydrogen/data/drumkits")
AUDIO = {".wav", ".flac", ".aif", ".aiff"}

# Kit makers' prefixes and what they stand for (BJA_Pacific, HardElectro1, Millo kits).
PREFIXES = {
    "bd": "kick",
    "sd": "snare",
    "sn": "snare",
    "hh": "hat",
    "chh": "hat",
    "ohh": "hat",
    "cb": "cowbell",
    "bl": "bell",
    "rd": "cymbal",
    "tm": "tom",
    "rs": "snare",
}

pytestmark = pytest.mark.skipif(not KITS.is_dir(), reason="hydrogen-drumkits not installed")


def _files() -> list[Path]:
    return sorted(p for p in KITS.rglob("*") if p.suffix.lower() in AUDIO)


def _words(name: str) -> list[str]:
    """Whole words, split independently of the parser: separators, case changes, digits."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])|[^A-Za-z]+", " ", name)
    return spaced.lower().split()


@pytest.fixture(scope="module")
def rules() -> MetadataRules:
    return MetadataRules.from_settings(load_settings().ingest)


def test_no_genre_is_read_from_inside_a_word(rules: MetadataRules) -> None:
    files = _files()
    assert len(files) > 500
    for path in files:
        names = [*path.relative_to(KITS).parts[:-1], path.stem]
        genre = rules.genres.find(*names)
        if genre is None:
            continue
        text = " " + " ".join(w for n in names for w in _words(n)) + " "
        joined = {w for n in names for w in _words(n)}
        said = [
            w
            for w in rules.genres.words[genre]
            if f" {' '.join(_words(w))} " in text or w.replace(" ", "") in joined
        ]
        assert said, f"{path}: genre {genre!r} from no whole word"


def test_kit_prefixes_name_their_instrument(rules: MetadataRules) -> None:
    seen = 0
    for path in _files():
        first = re.split(r"[^A-Za-z]+", path.stem)[0].lower()
        if first in PREFIXES:
            seen += 1
            got = rules.instruments.find(path.stem, path.parent.name)
            assert got == PREFIXES[first], path
            assert got in rules.unpitched or got == "bell", path
    assert seen > 100


def test_most_hits_get_an_instrument_from_their_names(rules: MetadataRules) -> None:
    files = [p for p in _files() if not p.parent.name.startswith("rumpf")]  # numbered only
    named = sum(rules.instruments.find(p.stem, p.parent.name) is not None for p in files)
    assert named / len(files) > 0.9, f"{named} of {len(files)}"
