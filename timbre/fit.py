"""How well a sample fits the project a producer is making: its tempo and its key.

A project context is a tempo, a key, or both. For each sample it gives:

- **tempo**: the stretch needed, in percent, to play the sample at the project's tempo. Half
  and double time count as fitting: a 62 BPM loop in a 124 BPM project is played at double time
  and needs no stretch. One-shots, and samples without a known tempo, have no tempo relation.
- **key**: the relation of the sample's key to the project's (same, relative, dominant,
  subdominant, parallel or other), and the semitones to transpose it by so that it lands on the
  project's key (or on its relative, when the modes differ). Samples without a key (drums,
  noise) have no key relation.
- **fits**: the tempo needs at most ``tempo_tolerance_pct`` of stretch, and the key relation is
  one of :data:`FITTING_RELATIONS`. A missing relation never counts against a sample.

The default tolerance, 8 %, is about where time-stretching starts to be heard on drums
(transients smear, and a loop's groove drifts from the project's swing); the fitting relations
are the ones harmonic mixing calls compatible: the same key, its relative, and a fifth either
way. A parallel key (A minor in C minor) shares the tonic but clashes on the third.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from timbre.errors import InvalidRequestError
from timbre.musickey import normalize_key

KeyRelation = Literal["same", "relative", "dominant", "subdominant", "parallel", "other"]
FITTING_RELATIONS: frozenset[str] = frozenset({"same", "relative", "dominant", "subdominant"})
DEFAULT_TEMPO_TOLERANCE_PCT = 8.0
MAX_BPM = 999.0
TEMPO_MULTIPLES = (1.0, 2.0, 0.5)
"""How a sample's tempo may be heard: as it is, at double time, at half time (in that order of
preference when two are equally close)."""

_NOTES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def parse_key(text: str) -> tuple[int, bool] | None:
    """``"Bb minor"`` -> ``(10, True)``: pitch class of the tonic and whether minor; None when
    the text names no key."""
    canonical = normalize_key(text)
    if canonical is None:
        return None
    minor = canonical.endswith("m")
    return _NOTES.index(canonical.removesuffix("m")), minor


def _signed(semitones: int) -> int:
    """The same pitch-class step, as the shortest move: -6..+5."""
    return (semitones + 6) % 12 - 6


@dataclass(frozen=True)
class ProjectContext:
    """A project's tempo and key (either may be None, not both). ``key`` is canonical
    (``A#m``); :meth:`of` reads any spelling."""

    bpm: float | None = None
    key: str | None = None
    tempo_tolerance_pct: float = DEFAULT_TEMPO_TOLERANCE_PCT

    def __post_init__(self) -> None:
        if self.bpm is None and self.key is None:
            raise InvalidRequestError("a project context needs a bpm, a key or both")
        if self.bpm is not None and not (math.isfinite(self.bpm) and 0 < self.bpm <= MAX_BPM):
            raise InvalidRequestError(f"bpm must be a number above 0 and at most {MAX_BPM:g}")
        if self.key is not None and normalize_key(self.key) != self.key:
            raise InvalidRequestError(f"{self.key!r} is not a canonical key (see .of)")
        tolerance = self.tempo_tolerance_pct
        if not (math.isfinite(tolerance) and 0 <= tolerance <= 100):
            raise InvalidRequestError("tempo_tolerance_pct must lie in [0, 100]")

    @classmethod
    def of(
        cls,
        bpm: float | None = None,
        key: str | None = None,
        tempo_tolerance_pct: float = DEFAULT_TEMPO_TOLERANCE_PCT,
    ) -> ProjectContext:
        """A context from values as people give them: ``key`` in any spelling (``"F# minor"``)."""
        canonical = None
        if key is not None:
            canonical = normalize_key(key)
            if canonical is None:
                raise InvalidRequestError(
                    f"{key!r} is not a musical key (try 'Am', 'F#', 'C major')"
                )
        return cls(bpm, canonical, tempo_tolerance_pct)


@dataclass(frozen=True)
class Fit:
    """How one sample fits a :class:`ProjectContext`.

    ``stretch_pct``: signed percent of time-stretch to the project tempo (+ = faster), after
    ``tempo_multiple`` (1, 2 = heard at double time, 0.5 = half time). ``semitones``: the
    transposition to the project key (or its relative), -6..+5. None: no such relation.
    """

    fits: bool
    stretch_pct: float | None = None
    tempo_multiple: float | None = None
    key_relation: KeyRelation | None = None
    semitones: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def stretch_ratio(self) -> float | None:
        """Playback-rate factor to the project tempo (``1.05`` = 5 % faster)."""
        return None if self.stretch_pct is None else 1.0 + self.stretch_pct / 100.0


def tempo_fit(sample_bpm: float, project_bpm: float) -> tuple[float, float]:
    """The tempo multiple the sample is best heard at, and the signed stretch in percent."""
    # Differences of logs, not the log of a ratio: the ratio of extreme tempos (5e-324 BPM,
    # 1e308 BPM) under- or overflows to 0 or inf. Clamped, the stretch stays a finite number.
    gaps = {m: math.log(project_bpm) - math.log(sample_bpm) - math.log(m) for m in TEMPO_MULTIPLES}
    best = min(TEMPO_MULTIPLES, key=lambda m: abs(gaps[m]))
    return best, math.expm1(max(-700.0, min(700.0, gaps[best]))) * 100.0


def key_relation(sample: tuple[int, bool], project: tuple[int, bool]) -> KeyRelation:
    """The relation of a sample's key to the project's (pitch class, minor)."""
    (tonic, minor), (home, home_minor) = sample, project
    if minor == home_minor:
        step = (tonic - home) % 12
        return {0: "same", 7: "dominant", 5: "subdominant"}.get(step, "other")  # type: ignore[return-value]
    if tonic == home:
        return "parallel"
    relative = (home + 3) % 12 if home_minor else (home - 3) % 12  # Am <-> C
    return "relative" if tonic == relative else "other"


def transpose_to(sample: tuple[int, bool], project: tuple[int, bool]) -> int:
    """Semitones (-6..+5) that bring the sample onto the project's key, or onto its relative
    when the modes differ (a minor loop in a major project lands on the relative minor)."""
    (tonic, minor), (home, home_minor) = sample, project
    target = home
    if minor != home_minor:
        target = (home + 3) % 12 if home_minor else (home - 3) % 12
    return _signed(target - tonic)


def fit_of(context: ProjectContext, payload: Mapping[str, Any]) -> Fit:
    """How a sample (its payload: ``bpm``, ``key``, ``kind``) fits ``context``."""
    multiple = stretch = relation = semitones = None
    fits = True
    bpm = payload.get("bpm")
    if (
        context.bpm is not None
        and payload.get("kind") != "one_shot"
        and isinstance(bpm, int | float)
        and math.isfinite(bpm)
        and bpm > 0
    ):
        multiple, stretch = tempo_fit(float(bpm), context.bpm)
        stretch = round(stretch, 2)
        fits = abs(stretch) <= context.tempo_tolerance_pct
    key = payload.get("key")
    sample_key = parse_key(key) if isinstance(key, str) else None
    if context.key is not None and sample_key is not None:
        project_key = parse_key(context.key)
        assert project_key is not None  # canonical by construction
        relation = key_relation(sample_key, project_key)
        semitones = transpose_to(sample_key, project_key)
        fits = fits and relation in FITTING_RELATIONS
    return Fit(fits, stretch, multiple, relation, semitones)
