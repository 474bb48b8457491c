"""Matched renditions: what a first audition costs, and how faithful the stretch is.

    python bench/bench_stretch.py [--repeats 7]

Cost, through ``MediaService.matched_rendition`` on a 4-bar loop at 120 BPM (8 s, 44.1 kHz
stereo, 16-bit WAV) matched to 124 BPM and -2 semitones:

- cold: nothing cached (the file's hash, decoding, the vocoder, resampling, writing the WAV);
- cached: the same request again (the rendition opened from the cache);
- the vocoder alone (``stretch.match``) for stretch only, transposition only, both, mono.

Quality, on synthetic loops with known answers (tests/support/synthetic_music.py):

- tempo: Timbre's detector on renditions of drum loops (three patterns) at several
  source -> project pairs, as the error of its reading against the tempo played;
- key: Timbre's key detector on chord loops in 5 keys x 3 voicings transposed by -5, -2, +3,
  +7 semitones: the share read as exactly the shifted key;
- the loop's wrap: the largest sample step within 10 ms of the wrap over the largest
  elsewhere, on a seamless held chord (1 = as smooth as the music; a seam shows as >> 1);
- fidelity: log-spectral distance (dB) between a stretched loop and the same loop
  synthesised at the new tempo, for the shipped vocoder and the variants it improves on.

Writes bench/results/stretch.json. The machine is shared: quote medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import add_results_argument, machine, write_results
from tests.support.one_file_media import one_file_media
from tests.support.synthetic_music import chord_loop, drum_loop, parse_test_key
from timbre.audio import stretch
from timbre.audio.key import estimate_key, key_name
from timbre.audio.tempo import estimate_tempo
from timbre.search import media as media_module

SR = 44100
TEMPO_PAIRS = ((120, 124), (128, 120), (90, 100), (100, 75), (120, 170), (140, 70), (174, 160))
PATTERNS = ("four_on_the_floor", "boom_bap", "breakbeat")
KEYS = ("C", "Am", "Dm", "F#m", "Eb")
SHIFTS = (-5, -2, 3, 7)


def _ms(times: list[float]) -> float:
    return round(1e3 * statistics.median(times), 1)


def bench_cost(folder: Path, repeats: int) -> dict[str, Any]:
    path = folder / "Drum_Loop_120bpm.wav"
    loop = np.stack([drum_loop(120, 4, SR, seed=1), drum_loop(120, 4, SR, seed=2)], axis=1)
    sf.write(path, loop, SR, subtype="PCM_16")
    media = one_file_media(path, {"bpm": 120.0, "kind": "loop"}, folder / "cache")
    cold, cached = [], []
    for _ in range(repeats):
        for old in (folder / "cache" / "renditions").glob("*.wav"):
            old.unlink()
        media_module._sha256.cache_clear()  # a first audition hashes the file too
        start = time.perf_counter()
        media.matched_rendition("a", bpm=124, semitones=-2).close()
        cold.append(time.perf_counter() - start)
        start = time.perf_counter()
        media.matched_rendition("a", bpm=124, semitones=-2).close()
        cached.append(time.perf_counter() - start)
    out: dict[str, Any] = {
        "clip": "4 bars at 120 BPM, 8 s, 44.1 kHz stereo, 16-bit WAV -> 124 BPM, -2 semitones",
        "cold_ms": _ms(cold),
        "cold_p90_ms": round(1e3 * float(np.percentile(cold, 90)), 1),
        "cached_ms": _ms(cached),
    }
    mono = loop.mean(axis=1)
    for name, samples, ratio, semitones in (
        ("match_stretch_ms", loop, 120 / 124, 0),
        ("match_semitones_ms", loop, 1.0, -2),
        ("match_both_ms", loop, 120 / 124, -2),
        ("match_mono_both_ms", mono, 120 / 124, -2),
        ("match_half_speed_ms", loop, 2.0, 0),
    ):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            stretch.match(samples, SR, ratio=ratio, semitones=semitones)
            times.append(time.perf_counter() - start)
        out[name] = _ms(times)
    print(
        f"cost: cold {out['cold_ms']} ms (p90 {out['cold_p90_ms']}), cached "
        f"{out['cached_ms']} ms; vocoder alone: stretch {out['match_stretch_ms']} ms, "
        f"semitones {out['match_semitones_ms']} ms, both {out['match_both_ms']} ms"
    )
    return out


def bench_tempo() -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for source, project in TEMPO_PAIRS:
        ratio = stretch.stretch_factor(source, project)
        played = source / ratio
        for pattern in PATTERNS:
            loop = drum_loop(source, 4, SR, pattern=pattern, seed=1)
            found = estimate_tempo(stretch.match(loop, SR, ratio=ratio, semitones=0), SR)
            bpm = found.bpm if found else None
            comb = found.comb_bpm if found else None
            # The detector's octave is its own matter (bench_analysis): errors are taken
            # against the played tempo's octave nearest to the reading.
            rows.append(
                {
                    "source": source,
                    "project": project,
                    "played": round(played, 2),
                    "pattern": pattern,
                    "bpm": bpm,
                    "comb_bpm": comb,
                    "error_pct": _octave_error(bpm, played),
                    "comb_error_pct": _octave_error(comb, played),
                    "octave": None if bpm is None else round(float(np.log2(bpm / played)), 2),
                }
            )
    errors: list[float] = [r["comb_error_pct"] for r in rows if r["comb_error_pct"] is not None]
    out = {
        "pairs": rows,
        "read": sum(r["bpm"] is not None for r in rows),
        "cases": len(rows),
        "max_error_pct": max(r["error_pct"] for r in rows if r["error_pct"] is not None),
        "max_comb_error_pct": max(errors),
        "median_comb_error_pct": round(statistics.median(errors), 3),
        "same_octave": sum(r["octave"] == 0 for r in rows),
    }
    print(
        f"tempo: {out['read']}/{out['cases']} read, max error {out['max_error_pct']}% "
        f"(comb before bar snapping: max {out['max_comb_error_pct']}%, median "
        f"{out['median_comb_error_pct']}%), {out['same_octave']} in the played octave"
    )
    return out


def _octave_error(found: float | None, played: float) -> float | None:
    if found is None:
        return None
    nearest = min((played / 2, played, played * 2), key=lambda p: abs(np.log2(found / p)))
    return round(100 * abs(found - nearest) / nearest, 3)


def bench_key() -> dict[str, Any]:
    right = total = 0
    misses = []
    for seed in range(3):
        for key in KEYS:
            loop = chord_loop(key, 120, 4, SR, seed=seed)
            tonic, minor = parse_test_key(key)
            for shift in SHIFTS:
                found = estimate_key(stretch.match(loop, SR, ratio=1.0, semitones=shift), SR)
                want = key_name(tonic + shift, minor)
                total += 1
                if found is not None and found.key == want:
                    right += 1
                else:
                    misses.append(f"{key}{shift:+d} seed {seed}: {found.key if found else None}")
    print(f"key: {right}/{total} read as the shifted key")
    return {"right": right, "cases": total, "misses": misses}


def bench_wrap() -> dict[str, Any]:
    n = round(4 * 60 / 120 * SR)
    t = np.arange(n) / n
    pad = np.zeros(n)
    for k, f in enumerate((110.0, 220.5, 330.7, 440.2)):
        pad += 0.08 * np.sin(2 * np.pi * round(f * n / SR) * t + k)
    out = {}
    for label, ratio, semitones in (
        ("120->124", 120 / 124, 0),
        ("128->120", 128 / 120, 0),
        ("-2 st", 1.0, -2),
        ("x0.9 +3 st", 0.9, 3),
    ):
        rendition = stretch.match(pad, SR, ratio=ratio, semitones=semitones)
        line = stretch.phase_vocoder(pad[None], SR, ratio, n_fft=2048)[0][: rendition.shape[0]]
        out[label] = {"matched": _wrap_ratio(rendition), "vocoder_as_a_line": _wrap_ratio(line)}
    print(
        "wrap (step at the wrap / largest elsewhere): "
        + ", ".join(
            f"{k} {v['matched']} (as a line {v['vocoder_as_a_line']})" for k, v in out.items()
        )
    )
    return out


def _wrap_ratio(loop: np.ndarray, around: int = 441) -> float:
    steps = np.abs(np.diff(np.concatenate([loop, loop])))
    n = loop.shape[0]
    return round(float(steps[n - around : n + around].max() / steps[around : n - around].max()), 3)


def _lsd(a: np.ndarray, b: np.ndarray, n_fft: int = 2048) -> float:
    """Mean log-spectral distance (dB) between two clips, frame by frame."""
    m = min(a.shape[0], b.shape[0])

    def spectrum(z: np.ndarray) -> np.ndarray:
        frames = np.lib.stride_tricks.sliding_window_view(z[:m].astype(np.float64), n_fft)
        power = np.abs(np.fft.rfft(frames[:: n_fft // 4] * np.hanning(n_fft), axis=1)) ** 2
        return 10 * np.log10(power + 1e-8)

    return float(np.sqrt(((spectrum(a) - spectrum(b)) ** 2).mean(axis=1)).mean())


def bench_fidelity() -> dict[str, Any]:
    variants = {
        "shipped (locked phases, onset resets)": {},
        "no onset resets": {"reset_onsets": False},
        "no phase locking": {"lock_phases": False},
        "textbook vocoder": {"lock_phases": False, "reset_onsets": False},
    }
    vocoder = stretch.phase_vocoder
    out: dict[str, Any] = {}
    pairs = ((120, 124), (128, 120), (90, 100), (100, 75))
    try:
        for name, options in variants.items():
            stretch.phase_vocoder = lambda *a, _o=options, **k: vocoder(*a, **k, **_o)  # type: ignore[misc]
            drums, chords = [], []
            for source, project in pairs:
                ratio = source / project
                for pattern in PATTERNS:
                    loop = drum_loop(source, 4, SR, pattern=pattern, seed=1)
                    want = drum_loop(project, 4, SR, pattern=pattern, seed=1)
                    drums.append(_lsd(stretch.match(loop, SR, ratio=ratio, semitones=0), want))
                loop = chord_loop("Am", source, 4, SR, seed=1, stabs=True)
                want = chord_loop("Am", project, 4, SR, seed=1, stabs=True)
                chords.append(_lsd(stretch.match(loop, SR, ratio=ratio, semitones=0), want))
            out[name] = {
                "drums_lsd_db": round(float(np.mean(drums)), 2),
                "chord_stabs_lsd_db": round(float(np.mean(chords)), 2),
            }
            print(f"fidelity, {name}: {out[name]}")
    finally:
        stretch.phase_vocoder = vocoder
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    add_results_argument(parser, "stretch")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="timbre-bench-stretch-") as tmp:
        cost = bench_cost(Path(tmp), args.repeats)
    write_results(
        args.results,
        {
            "machine": machine(),
            "stretch_version": stretch.STRETCH_VERSION,
            "cost": cost,
            "tempo": bench_tempo(),
            "key": bench_key(),
            "wrap": bench_wrap(),
            "fidelity": bench_fidelity(),
        },
    )


if __name__ == "__main__":
    main()
