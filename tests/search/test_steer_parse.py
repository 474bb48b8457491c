"""The excluded-words rule every door shares: ``-word`` and ``-"a phrase"`` tokens of a query."""

from __future__ import annotations

import pytest

from timbre.errors import InvalidRequestError
from timbre.search.steer import TextQuery, parse_text

CASES = [
    ("kick -distorted", "kick", ("distorted",)),
    ("punchy kick", "punchy kick", ()),
    # a hyphen inside a word is part of it
    ("lo-fi hi-hat", "lo-fi hi-hat", ()),
    ("hi-hat -lo-fi", "hi-hat", ("lo-fi",)),
    # quoted phrases, excluded or kept as typed
    ('kick -"lo fi" snare', "kick snare", ("lo fi",)),
    ('-"lo   fi" punchy', "punchy", ("lo fi",)),
    ('"warm pad" -dusty', '"warm pad"', ("dusty",)),
    ("kick “warm pad” -“lo fi”", "kick “warm pad”", ("lo fi",)),
    ('kick -"unclosed phrase', "kick", ("unclosed phrase",)),
    ('kick -""', "kick", ()),
    # a lone hyphen, a double one and a negative number are text
    ("kick - snare", "kick - snare", ()),
    ("kick --x", "kick --x", ()),
    ("kick at -6 dB", "kick at -6 dB", ()),
    # unicode words and whitespace
    ("キック -歪み", "キック", ("歪み",)),
    ("çok ağır\u00a0-bozuk", "çok ağır", ("bozuk",)),
    ("bass -Distorted -distorted", "bass", ("Distorted",)),
]


@pytest.mark.parametrize(("raw", "text", "avoid"), CASES, ids=[c[0] for c in CASES])
def test_exclusions_are_read_from_the_text(raw: str, text: str, avoid: tuple[str, ...]) -> None:
    assert parse_text(raw) == TextQuery(text, avoid)


def test_text_without_exclusions_is_kept_exactly() -> None:
    """So an existing query keeps its cache entry and its vector."""
    assert parse_text("  punchy   kick ").text == "  punchy   kick "


def test_avoid_words_join_the_excluded_ones_once() -> None:
    got = parse_text("kick -distorted", ["Distorted", " lo   fi ", "noise"])
    assert got == TextQuery("kick", ("distorted", "lo fi", "noise"))
    assert got.describe() == {"text": "kick", "avoid": ["distorted", "lo fi", "noise"]}
    assert parse_text("kick").describe() == {"text": "kick"}


@pytest.mark.parametrize("raw", ["-distorted", '-"lo fi" -noise', "  -a  "])
def test_only_exclusions_are_refused(raw: str) -> None:
    with pytest.raises(InvalidRequestError, match="only words to avoid"):
        parse_text(raw)
    assert parse_text(raw, require_text=False).text == ""


def test_empty_texts_and_words_are_refused() -> None:
    with pytest.raises(InvalidRequestError, match="empty"):
        parse_text("   ")
    with pytest.raises(InvalidRequestError, match="avoid"):
        parse_text("kick", ["  "])
    with pytest.raises(InvalidRequestError, match="avoid"):
        parse_text("kick", ["x" * 201])
