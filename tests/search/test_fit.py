"""The project context's fit: tempo stretch with half and double time, key relations and the
transposition that lands a sample on the project's key."""

from __future__ import annotations

import math

import pytest

from timbre.errors import InvalidRequestError
from timbre.fit import ProjectContext, fit_of, key_relation, parse_key, transpose_to


def loop(bpm: float | None = None, key: str | None = None) -> dict[str, object]:
    return {"kind": "loop", "bpm": bpm, "key": key}


@pytest.mark.parametrize(
    ("sample", "project", "multiple", "stretch"),
    [
        (124, 124, 1.0, 0.0),
        (120, 124, 1.0, 3.33),
        (128, 120, 1.0, -6.25),
        (62, 124, 2.0, 0.0),  # double time fits
        (250, 124, 0.5, -0.8),  # half time
        (90, 140, 2.0, -22.22),  # 180 is closer than 90 in ratio
    ],
)
def test_tempo_stretch_counts_half_and_double_time(
    sample: float, project: float, multiple: float, stretch: float
) -> None:
    fit = fit_of(ProjectContext.of(bpm=project), loop(bpm=sample))
    assert fit.tempo_multiple == multiple
    assert fit.stretch_pct == pytest.approx(stretch, abs=0.01)
    assert fit.fits == (abs(stretch) <= 8.0)


@pytest.mark.parametrize(
    ("sample", "project", "relation", "semitones"),
    [
        ("Am", "Am", "same", 0),
        ("C", "Am", "relative", 0),  # C major is A minor's relative: nothing to move
        ("Am", "C", "relative", 0),
        ("Em", "Am", "dominant", 5),
        ("Dm", "Am", "subdominant", -5),
        ("A", "Am", "parallel", 3),  # A major -> C major, the relative of A minor
        ("Bbm", "Am", "other", -1),
        ("F#m", "C", "other", 3),  # F#m -> Am, the relative of C
        ("Gb", "F#", "same", 0),  # enharmonics are one key
    ],
)
def test_key_relation_and_transposition(
    sample: str, project: str, relation: str, semitones: int
) -> None:
    fit = fit_of(ProjectContext.of(key=project), loop(key=sample))
    assert fit.key_relation == relation
    assert fit.semitones == semitones
    assert fit.fits == (relation in {"same", "relative", "dominant", "subdominant"})


def test_transposition_always_lands_on_the_project_key_or_its_relative() -> None:
    for tonic in range(12):
        for minor in (False, True):
            for home in range(12):
                for home_minor in (False, True):
                    shift = transpose_to((tonic, minor), (home, home_minor))
                    assert -6 <= shift <= 5
                    moved = ((tonic + shift) % 12, minor)
                    assert key_relation(moved, (home, home_minor)) in {"same", "relative"}


def test_samples_without_tempo_or_key_have_no_relation_and_still_fit() -> None:
    context = ProjectContext.of(bpm=124, key="Am")
    kick = {"kind": "one_shot", "bpm": 140.0, "key": None}  # a one-shot's bpm is no tempo
    fit = fit_of(context, kick)
    assert fit.fits and fit.stretch_pct is None and fit.key_relation is None
    assert fit_of(context, {"kind": "loop", "bpm": None, "key": "gibberish"}).fits


def test_both_must_fit() -> None:
    context = ProjectContext.of(bpm=124, key="Am")
    assert fit_of(context, loop(bpm=122, key="C")).fits
    assert not fit_of(context, loop(bpm=122, key="F#")).fits
    assert not fit_of(context, loop(bpm=100, key="Am")).fits


def test_tolerance_is_a_setting() -> None:
    strict = ProjectContext.of(bpm=124, tempo_tolerance_pct=1.0)
    assert not fit_of(strict, loop(bpm=120)).fits
    assert fit_of(strict, loop(bpm=123.5)).fits


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"bpm": 0},
        {"bpm": -5},
        {"bpm": math.nan},
        {"bpm": math.inf},
        {"bpm": 5000},
        {"key": "H minor"},
        {"key": ""},
        {"bpm": 120, "tempo_tolerance_pct": -1},
    ],
)
def test_bad_contexts_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidRequestError):
        ProjectContext.of(**kwargs)  # type: ignore[arg-type]


def test_parse_key_reads_any_spelling() -> None:
    assert parse_key("Bb minor") == (10, True)
    assert parse_key("F#") == (6, False)
    assert parse_key("nope") is None


@pytest.mark.parametrize(
    ("sample", "project"), [(120.0, 5e-324), (1e308, 124.0), (5e-324, 999.0), (1e308, 5e-324)]
)
def test_extreme_tempos_give_a_stretch_not_an_error(sample: float, project: float) -> None:
    fit = fit_of(ProjectContext.of(bpm=project), {"kind": "loop", "bpm": sample})
    assert fit.stretch_pct is not None and math.isfinite(fit.stretch_pct) and not fit.fits
