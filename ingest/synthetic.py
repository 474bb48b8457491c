"""A synthetic sample library (producer-style names, every format, a few broken files) for the
quick start, tests and benchmarks, with each file's expected metadata."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from numpy.typing import NDArray

SR_CHOICES = (44100, 48000, 22050, 24000, 96000)
FORMATS = (
    ("wav", "WAV", "PCM_16"),
    ("flac", "FLAC", "PCM_24"),
    ("aiff", "AIFF", "PCM_16"),
    ("ogg", "OGG", "VORBIS"),
    ("mp3", "MP3", "MPEG_LAYER_III"),
    ("wav", "WAV", "FLOAT"),
)


@dataclass(frozen=True)
class Expected:
    """What Timbre should find out about a generated file (None = not stated anywhere)."""

    pack: str
    genre: str | None
    instrument: str | None
    kind: str
    bpm: float | None
    key: str | None
    duration_s: float


@dataclass(frozen=True)
class Library:
    root: Path
    files: dict[Path, Expected]
    broken: dict[Path, str]  # path -> the failure code expected


def _t(seconds: float, sr: int) -> NDArray[np.float64]:
    return np.arange(max(1, round(seconds * sr))) / sr


def _env(t: NDArray[np.float64], decay: float) -> NDArray[np.float64]:
    return np.exp(-t * decay)


def kick(sr: int, s: float, rng: np.random.Generator) -> np.ndarray:
    t = _t(s, sr)
    f = rng.uniform(40, 60) + rng.uniform(80, 160) * np.exp(-t * rng.uniform(20, 45))
    return np.sin(2 * np.pi * np.cumsum(f) / sr) * _env(t, rng.uniform(6, 12))


def snare(sr: int, s: float, rng: np.random.Generator) -> np.ndarray:
    t = _t(s, sr)
    body = np.sin(2 * np.pi * rng.uniform(160, 240) * t) * _env(t, 25)
    return 0.5 * body + 0.6 * rng.standard_normal(len(t)) * _env(t, rng.uniform(12, 25))


def hat(sr: int, s: float, rng: np.random.Generator) -> np.ndarray:
    t = _t(s, sr)
    return 0.5 * np.diff(rng.standard_normal(len(t) + 1)) * _env(t, rng.uniform(25, 70))


def clap(sr: int, s: float, rng: np.random.Generator) -> np.ndarray:
    t = _t(s, sr)
    bursts = sum(np.where((t >= d) & (t < d + 0.01), 1.0, 0.0) for d in (0.0, 0.012, 0.025))
    return rng.standard_normal(len(t)) * (0.6 * bursts + 0.4 * _env(t, 18))


def _note_hz(rng: np.random.Generator, low: int, high: int) -> float:
    return 440.0 * 2 ** ((int(rng.integers(low, high)) - 69) / 12)


def bass(sr: int, s: float, rng: np.random.Generator) -> np.ndarray:
    t = _t(s, sr)
    f = _note_hz(rng, 33, 45)
    wave: NDArray[np.float64] = np.tanh(3 * np.sin(2 * np.pi * f * t))
    return wave * _env(t, rng.uniform(0.5, 3))


def pad(sr: int, s: float, rng: np.random.Generator) -> np.ndarray:
    t = _t(s, sr)
    root = _note_hz(rng, 48, 60)
    chord = sum(np.sin(2 * np.pi * root * r * t + rng.uniform(0, 6)) for r in (1.0, 1.19, 1.5, 2.0))
    attack = np.minimum(1.0, t / 0.5)
    return chord / 4 * attack


def lead(sr: int, s: float, rng: np.random.Generator) -> np.ndarray:
    t = _t(s, sr)
    f = _note_hz(rng, 60, 76)
    saw = 2 * ((f * t) % 1.0) - 1
    return 0.5 * saw * _env(t, rng.uniform(0.3, 2))


def pluck(sr: int, s: float, rng: np.random.Generator) -> np.ndarray:
    t = _t(s, sr)
    f = _note_hz(rng, 55, 79)
    return np.sin(2 * np.pi * f * t) * np.sin(2 * np.pi * 2 * f * t) * _env(t, rng.uniform(6, 14))


def riser(sr: int, s: float, rng: np.random.Generator) -> np.ndarray:
    t = _t(s, sr)
    ramp: NDArray[np.float64] = t / t[-1]
    sweep = np.sin(2 * np.pi * np.cumsum(200 + 4000 * ramp**2) / sr)
    return (0.4 * sweep + 0.3 * rng.standard_normal(len(t))) * ramp


SOUNDS: dict[str, Callable[[int, float, np.random.Generator], np.ndarray]] = {
    f.__name__: f for f in (kick, snare, hat, clap, bass, pad, lead, pluck, riser)
}
ONE_SHOT_LABELS = {name: name.capitalize() for name in SOUNDS} | {"hat": "ClosedHat"}

PACKS = (
    ("Techno Essentials Vol 1", "techno", 128.0),
    ("Deep House Grooves", "house", 122.0),
    ("Lofi Hip Hop Kit", "hip hop", 88.0),
    ("Liquid DnB Sessions", "drum and bass", 174.0),
)
# (as written in the file name, the display form Timbre should read: spelling kept)
KEYS = (("Am", "Am"), ("Cmaj", "C"), ("F#min", "F#m"), ("D major", "D"), ("Gm", "Gm"), ("Bb", "Bb"))
LOOP_LABELS = {"drums": "Drum", "bass": "Bass", "pad": "Pad", "pluck": "Pluck"}


def _loop(instrument: str, sr: int, bpm: float, bars: int, rng: np.random.Generator) -> np.ndarray:
    beat = 60.0 / bpm
    total = bars * 4 * beat
    out = np.zeros(round(total * sr))
    hits = {"kick": [0.0, 1.0, 2.0, 3.0], "hat": [0.5, 1.5, 2.5, 3.5], "snare": [1.0, 3.0]}
    if instrument == "drums":
        for bar in range(bars):
            for name, beats in hits.items():
                for b in beats:
                    start = round((bar * 4 + b) * beat * sr)
                    sound = SOUNDS[name](sr, min(0.4, beat), rng)[: out.shape[0] - start]
                    out[start : start + sound.shape[0]] += sound
    else:
        step = beat if instrument == "bass" else 2 * beat
        for i in range(round(total / step)):
            start = round(i * step * sr)
            sound = SOUNDS[instrument](sr, step, rng)[: out.shape[0] - start]
            out[start : start + sound.shape[0]] += sound
    return out


def make_library(
    root: Path,
    *,
    one_shots_per_pack: int = 30,
    loops_per_pack: int = 8,
    broken: bool = True,
    seed: int = 0,
    loop_bars: tuple[int, ...] = (2, 4, 8),
) -> Library:
    """Write a library under ``root`` and return what each file should be found to be."""
    rng = np.random.default_rng(seed)
    files: dict[Path, Expected] = {}
    fmt_i = 0
    for pack, genre, bpm in PACKS:
        for i in range(one_shots_per_pack):
            instrument = list(ONE_SHOT_LABELS)[i % len(ONE_SHOT_LABELS)]
            label = ONE_SHOT_LABELS[instrument]
            seconds = (
                float(rng.uniform(0.1, 2.0))
                if instrument not in ("pad", "riser")
                else float(rng.uniform(1.0, 1.4))
            )
            written, key = (
                KEYS[i % len(KEYS)]
                if instrument in ("bass", "pad", "lead", "pluck")
                else ("", None)
            )
            key_part = f"_{written}" if key else ""
            ext, fmt, subtype = FORMATS[fmt_i % len(FORMATS)]
            fmt_i += 1
            sr = SR_CHOICES[i % len(SR_CHOICES)] if fmt != "MP3" else 44100
            folder = root / pack / "One Shots" / _plural(label)
            path = (
                folder
                / f"{label}_{['Punchy', 'Dusty', 'Bright', 'Deep'][i % 4]}_{i:02d}{key_part}.{ext}"
            )
            _write(
                path,
                SOUNDS[instrument](sr, seconds, rng),
                sr,
                fmt=fmt,
                subtype=subtype,
                channels=1 + i % 2,
            )
            files[path] = Expected(pack, genre, instrument, "one_shot", None, key, seconds)
        for j in range(loops_per_pack):
            instrument = ("drums", "bass", "pad", "pluck")[j % 4]
            bars = loop_bars[j % len(loop_bars)]
            written, key = KEYS[j % len(KEYS)] if instrument != "drums" else ("", None)
            ext, fmt, subtype = FORMATS[fmt_i % len(FORMATS)]
            fmt_i += 1
            sr = 44100
            label = LOOP_LABELS[instrument]
            name = (
                f"{label}_Loop_{int(bpm)}bpm" + (f"_{written}" if key else "") + f"_{j:02d}.{ext}"
            )
            path = root / pack / "Loops" / f"{label} Loops" / name
            audio = _loop(instrument, sr, bpm, bars, rng)
            _write(path, audio, sr, fmt=fmt, subtype=subtype, channels=2)
            files[path] = Expected(pack, genre, instrument, "loop", bpm, key, bars * 4 * 60.0 / bpm)
    bad: dict[Path, str] = {}
    if broken:
        bad = _broken(root / PACKS[0][0] / "One Shots" / "Kicks", rng)
    return Library(root=root, files=files, broken=bad)


def _plural(label: str) -> str:
    """A folder name as a pack names it: "Kicks", "Pads", but "Bass" (not "Basss")."""
    return label if label.endswith("s") else f"{label}s"


def _write(
    path: Path, audio: np.ndarray, sr: int, *, fmt: str, subtype: str, channels: int = 1
) -> None:
    peak = float(np.abs(audio).max()) or 1.0
    mono = (0.8 * audio / peak).astype(np.float32)
    data = mono if channels == 1 else np.stack([mono] * channels, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, sr, format=fmt, subtype=subtype)


def _broken(folder: Path, rng: np.random.Generator) -> dict[Path, str]:
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[Path, str] = {}
    cut = folder / "Kick_Truncated_99.wav"
    _write(cut, kick(44100, 1.0, rng), 44100, fmt="WAV", subtype="PCM_16")
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    out[cut] = "truncated"
    fake = folder / "Kick_ReadMe_98.wav"
    fake.write_text("These kicks are royalty free. Enjoy!\n" * 20)
    out[fake] = "not_audio"
    empty = folder / "Kick_Empty_97.flac"
    empty.write_bytes(b"")
    out[empty] = "empty"
    nan = folder / "Kick_NaN_96.wav"
    x = kick(44100, 0.3, rng).astype(np.float32)
    x[len(x) // 2] = math.nan
    sf.write(nan, x, 44100, subtype="FLOAT")
    out[nan] = "non_finite"
    return out
