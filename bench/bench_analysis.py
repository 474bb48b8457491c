"""Accuracy and cost of the tempo and key analysis that ingest runs on every sample.

    python bench/bench_analysis.py [--per-cell 2] [--librosa-python /path/to/python]

* **Tempo** on synthetic drum loops (four-on-the-floor, techno, boom bap, two-step drum and
  bass, half-time trap, breakbeat) at tempi typical of each style, 1-8 bars, 22.05-96 kHz,
  some swung or humanised: written to WAV, decoded the way ingest decodes. Reports the share
  within ±1.5 BPM (acc1), the share right up to an octave (acc2: x2 or x0.5), the share on the
  exact integer BPM, refusals, and the error of a plain autocorrelation peak (integer lag at
  the 10 ms hop) next to the comb's and the whole-bar refined one.
* **Key** on chord loops in all 24 keys (four progressions each, held or stabbed, some over
  drums, some detuned by up to 25 cents): exact, and the usual confusions (relative,
  parallel, fifth), refusals; and the MIREX weighted score.
* **Refusals that should happen**: no tempo for noise, held chords and one-shots; no key for
  drum loops, noise, drum one-shots and single notes.
* **Cost**: CPU ms per audio-second of tempo, key, peaks and the whole pass, next to decoding
  itself; the decode stage (``ingest.workers.prepare``) on the demo library
  (``ingest.synthetic.make_library``, what ``timbre quickstart`` builds) before (decode,
  tags and names only) and after (plus the analysis); and per decoding worker, the import
  time and resident memory of the analysis, and of librosa when ``--librosa-python`` names an
  interpreter that has it (the project does not depend on librosa; it is only measured).

Writes bench/results/analysis.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, median, write_results
from tests.support.synthetic_music import (
    PATTERNS,
    chord_loop,
    drum_loop,
    noise_loop,
    one_shot,
    parse_test_key,
)
from timbre.audio.analysis import ANALYSIS_VERSION, analyse
from timbre.audio.decode import decode_file
from timbre.audio.key import estimate_key, key_name
from timbre.audio.peaks import compute_peaks
from timbre.audio.tempo import _autocorrelation, estimate_tempo, onset_envelope

MODEL_SR = 24000
RATES = (44100, 48000, 22050, 96000)
TEMPI = {
    "four_on_the_floor": (90, 118, 124, 128, 140, 150, 174),
    "techno": (125, 130, 138, 145),
    "boom_bap": (80, 86, 90, 95),
    "two_step": (165, 170, 174),
    "half_time": (130, 140, 150),
    "breakbeat": (120, 132, 140, 170),
}
BARS = (1, 2, 4, 8)


def _decode(folder: Path, samples: np.ndarray, sr: int, name: str) -> Any:
    path = folder / f"{name}.wav"
    sf.write(path, samples, sr, subtype="PCM_16")
    return decode_file(path, sample_rate=MODEL_SR, max_duration_s=600, max_file_bytes=1 << 30)


def _plain_acf_bpm(samples: np.ndarray, true_bpm: float) -> float:
    """The integer-lag autocorrelation peak near the true tempo: what a plain estimate gives."""
    env, fps = onset_envelope(samples, MODEL_SR)
    acf = _autocorrelation(env)
    lag = 60 * fps / true_bpm
    lags = np.arange(max(1, int(lag * 0.9)), min(acf.shape[0] - 1, int(lag * 1.1) + 2))
    return float(60 * fps / lags[np.argmax(acf[lags])])


def bench_tempo(folder: Path, per_cell: int, librosa_python: str | None) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    paths: list[str] = []
    i = 0
    for pattern, tempi in TEMPI.items():
        for bpm in tempi:
            for bars in BARS:
                for rep in range(per_cell):
                    i += 1
                    sr = RATES[i % len(RATES)]
                    swing = 0.25 if i % 5 == 0 else 0.0
                    jitter = 3.0 if i % 3 == 0 else 0.0
                    loop = drum_loop(
                        bpm, bars, sr, pattern=pattern, seed=i, swing=swing, jitter_ms=jitter
                    )
                    audio = _decode(folder, loop, sr, f"tempo_{i:04d}")
                    paths.append(str(folder / f"tempo_{i:04d}.wav"))
                    found = estimate_tempo(audio.samples, MODEL_SR, audio.duration_s)
                    rows.append(
                        {
                            "pattern": pattern,
                            "bpm": bpm,
                            "bars": bars,
                            "rep": rep,
                            "found": found.bpm if found else None,
                            "comb": found.comb_bpm if found else None,
                            "plain": _plain_acf_bpm(audio.samples, bpm),
                            "confidence": found.confidence if found else None,
                        }
                    )
    summary = _tempo_summary(rows)
    by_pattern = {p: _tempo_summary([r for r in rows if r["pattern"] == p]) for p in TEMPI}
    by_bars = {str(b): _tempo_summary([r for r in rows if r["bars"] == b]) for b in BARS}
    out: dict[str, Any] = {
        "loops": len(rows),
        "all": summary,
        "by_pattern": by_pattern,
        "by_bars": by_bars,
    }
    if librosa_python:
        estimates = _librosa_tempi(librosa_python, paths)
        lib_rows = [dict(r, found=e, comb=None) for r, e in zip(rows, estimates, strict=True)]
        lib = _tempo_summary(lib_rows)
        out["librosa_feature_tempo"] = {k: v for k, v in lib.items() if "plain" not in k}
    return out


def _tempo_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def share(test: Callable[[dict[str, Any]], bool]) -> float:
        return round(sum(map(test, rows)) / max(1, len(rows)), 3)

    def octave_ok(r: dict[str, Any]) -> bool:
        return r["found"] is not None and any(
            abs(r["found"] - r["bpm"] * f) <= 1.5 * f for f in (0.5, 1, 2)
        )

    found = [r for r in rows if r["found"] is not None]
    combs = [
        abs(r["comb"] - r["bpm"])
        for r in found
        if r.get("comb") is not None and abs(r["comb"] - r["bpm"]) < 0.1 * r["bpm"]
    ]
    plains = [abs(r["plain"] - r["bpm"]) for r in rows if r.get("plain") is not None]
    return {
        "n": len(rows),
        "acc1_within_1.5bpm": share(
            lambda r: r["found"] is not None and _close(r["found"], r["bpm"])
        ),
        "acc2_octave_ok": share(octave_ok),
        "exact_integer": share(lambda r: r["found"] == r["bpm"]),
        "refused": share(lambda r: r["found"] is None),
        "median_abs_error_comb_bpm": round(median(combs), 3) if combs else None,
        "median_abs_error_plain_acf_bpm": round(median(plains), 3) if plains else None,
        "max_abs_error_plain_acf_bpm": round(max(plains), 3) if plains else None,
    }


def _close(found: float, bpm: float) -> bool:
    return abs(found - bpm) <= 1.5


def bench_key(folder: Path, per_cell: int) -> dict[str, Any]:
    rows = []
    i = 0
    for minor in (False, True):
        for tonic in range(12):
            key = key_name(tonic, minor)
            for progression in range(4):
                for rep in range(per_cell):
                    i += 1
                    sr = RATES[i % len(RATES)]
                    bpm = (90, 110, 124, 140)[(i + rep) % 4]
                    detune = (0, 0, 12, -25)[i % 4]
                    loop = chord_loop(
                        key,
                        bpm,
                        4,
                        sr,
                        progression=progression,
                        seed=i,
                        stabs=i % 2 == 1,
                        detune_cents=detune,
                    )
                    if i % 3 == 0:  # over drums
                        loop = 0.7 * loop + 0.3 * drum_loop(bpm, 4, sr, seed=i)
                    audio = _decode(folder, loop.astype(np.float32), sr, f"key_{i:04d}")
                    found = estimate_key(audio.samples, MODEL_SR)
                    rows.append(
                        {
                            "key": key,
                            "progression": progression,
                            "drums": i % 3 == 0,
                            "found": found.key if found else None,
                        }
                    )
    out = {"loops": len(rows), "all": _key_summary(rows)}
    out["by_progression"] = {
        str(p): _key_summary([r for r in rows if r["progression"] == p]) for p in range(4)
    }
    out["over_drums"] = _key_summary([r for r in rows if r["drums"]])
    return out


def _key_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    kinds: Counter[str] = Counter()
    for r in rows:
        kinds[_relation(r["key"], r["found"])] += 1
    n = max(1, len(rows))
    # MIREX key score: 1 exact, 0.5 fifth, 0.3 relative, 0.2 parallel, 0 otherwise.
    weights = {"exact": 1.0, "fifth": 0.5, "relative": 0.3, "parallel": 0.2}
    score = sum(weights.get(k, 0.0) * v for k, v in kinds.items()) / n
    return {
        "n": len(rows),
        **{k: round(v / n, 3) for k, v in sorted(kinds.items())},
        "mirex_weighted_score": round(score, 3),
    }


def _relation(truth: str, found: str | None) -> str:
    if found is None:
        return "refused"
    (t, tm), (f, fm) = parse_test_key(truth), parse_test_key(found)
    if (t, tm) == (f, fm):
        return "exact"
    if tm == fm and (f - t) % 12 in (5, 7):
        return "fifth"
    if tm != fm and (f - t) % 12 == (3 if tm else 9):
        return "relative"
    if tm != fm and f == t:
        return "parallel"
    return "other"


def bench_refusals() -> dict[str, Any]:
    cases: dict[str, list[np.ndarray]] = {
        "noise": [noise_loop(6.0, MODEL_SR, seed=s) for s in range(6)],
        "held_chords": [
            chord_loop(key_name(s, s % 2 == 1), 100 + 8 * s, 4, MODEL_SR, seed=s) for s in range(6)
        ],
        "drum_loops": [
            drum_loop(124, 4, MODEL_SR, pattern=p, seed=s) for s, p in enumerate(PATTERNS)
        ],
        "kick": [one_shot("kick", MODEL_SR, seed=s) for s in range(6)],
        "snare": [one_shot("snare", MODEL_SR, seed=s) for s in range(6)],
        "hat": [one_shot("hat", MODEL_SR, seed=s) for s in range(6)],
        "single_note": [one_shot("pluck", MODEL_SR, seed=s) for s in range(6)],
    }
    out = {}
    for name, clips in cases.items():
        tempo = sum(estimate_tempo(c, MODEL_SR) is None for c in clips) / len(clips)
        key = sum(estimate_key(c, MODEL_SR) is None for c in clips) / len(clips)
        out[name] = {
            "n": len(clips),
            "tempo_refused": round(tempo, 3),
            "key_refused": round(key, 3),
        }
    return out


def _cpu_ms_per_audio_s(fn: Callable[[], object], audio_s: float, repeats: int = 5) -> float:
    fn()
    start = time.process_time()
    for _ in range(repeats):
        fn()
    return round(1000 * (time.process_time() - start) / repeats / audio_s, 3)


def bench_cost(folder: Path) -> dict[str, Any]:
    loop = 0.7 * chord_loop("Am", 124, 8, 44100) + 0.3 * drum_loop(124, 8, 44100)
    path = folder / "cost.wav"
    sf.write(path, loop.astype(np.float32), 44100, subtype="PCM_16")
    audio = decode_file(path, sample_rate=MODEL_SR, max_duration_s=600, max_file_bytes=1 << 30)
    x, seconds = audio.samples, audio.duration_s
    return {
        "clip_s": round(seconds, 3),
        "cpu_ms_per_audio_s": {
            "decode_and_resample_44k1_wav": _cpu_ms_per_audio_s(
                lambda: decode_file(
                    path, sample_rate=MODEL_SR, max_duration_s=600, max_file_bytes=1 << 30
                ),
                seconds,
            ),
            "tempo": _cpu_ms_per_audio_s(lambda: estimate_tempo(x, MODEL_SR, seconds), seconds),
            "key": _cpu_ms_per_audio_s(lambda: estimate_key(x, MODEL_SR), seconds),
            "peaks": _cpu_ms_per_audio_s(lambda: compute_peaks(x), seconds),
            "analyse_all": _cpu_ms_per_audio_s(lambda: analyse(x, MODEL_SR, seconds), seconds),
        },
    }


def bench_decode_stage(folder: Path) -> dict[str, Any]:
    """``prepare`` over the demo library, against the same work without the analysis."""
    from ingest.metadata import AudioFacts, MetadataRules, describe
    from ingest.options import Limits
    from ingest.synthetic import make_library
    from ingest.tags import read_tags
    from ingest.workers import prepare
    from timbre.settings import load_settings

    library = make_library(folder / "demo")
    settings = load_settings()
    rules = MetadataRules.from_settings(settings.ingest)
    limits = Limits(MODEL_SR, settings.audio.max_duration_s, settings.audio.max_file_bytes)
    paths = sorted(library.files)

    def before() -> None:  # main's prepare: decode, tags, names
        for p in paths:
            audio = decode_file(p, sample_rate=MODEL_SR, max_duration_s=600, max_file_bytes=1 << 30)
            facts = AudioFacts(
                audio.duration_s, audio.source_sample_rate, audio.channels, audio.format
            )
            describe(p, library.root, facts, read_tags(p), rules)

    def after() -> None:
        for p in paths:
            prepare("0" * 64, [(str(p), str(library.root))], limits, rules, True)

    runs: dict[str, list[float]] = {"before": [], "after": []}
    before(), after()  # warm the page cache and imports
    for _ in range(3):  # interleaved, so drift in machine load hits both alike
        for name, fn in (("before", before), ("after", after)):
            start = time.process_time()
            fn()
            runs[name].append(time.process_time() - start)
    audio_s = sum(e.duration_s for e in library.files.values())
    b, a = median(runs["before"]), median(runs["after"])
    return {
        "files": len(paths),
        "audio_s": round(audio_s, 1),
        "cpu_s_before": round(b, 3),
        "cpu_s_after": round(a, 3),
        "ratio_after_over_before": round(a / b, 3),
        "added_cpu_ms_per_file": round(1000 * (a - b) / len(paths), 2),
    }


_PROBE = r"""
import json, resource, sys, time
import numpy as np
def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
base = rss_mb()
t = time.perf_counter()
exec(sys.argv[1])
imported = time.perf_counter() - t
after_import = rss_mb()
x = (np.random.default_rng(0).standard_normal(24000 * 8) * 0.1).astype(np.float32)
t = time.perf_counter()
exec(sys.argv[2])
first = time.perf_counter() - t
t = time.perf_counter()
exec(sys.argv[2])
second = time.perf_counter() - t
print(json.dumps({"import_s": round(imported, 3), "first_call_s": round(first, 3),
    "second_call_s": round(second, 3), "rss_after_import_mb": round(after_import - base, 1),
    "rss_after_calls_mb": round(rss_mb() - base, 1),
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def bench_worker_cost(librosa_python: str | None) -> dict[str, Any]:
    """Import time and resident memory each decoding worker pays, in fresh interpreters."""
    out = {
        "timbre_analysis": _probe(
            sys.executable,
            "from timbre.audio.analysis import analyse",
            "analyse(x, 24000, 8.0)",
        )
    }
    if librosa_python:
        out["librosa"] = _probe(
            librosa_python,
            "import librosa",
            "librosa.feature.tempo(y=x, sr=24000); librosa.feature.chroma_cqt(y=x, sr=24000)",
        )
        out["librosa"]["version"] = subprocess.run(
            [librosa_python, "-c", "import librosa; print(librosa.__version__)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return out


def _probe(python: str, setup: str, call: str) -> dict[str, Any]:
    done = subprocess.run(
        [python, "-c", _PROBE, setup, call],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


_LIBROSA_TEMPO = r"""
import json, sys, librosa
out = []
for path in sys.stdin.read().split("\n"):
    if path:
        y, sr = librosa.load(path, sr=24000, mono=True)
        out.append(float(librosa.feature.tempo(y=y, sr=sr)[0]))
print(json.dumps(out))
"""


def _librosa_tempi(python: str, paths: list[str]) -> list[float]:
    done = subprocess.run(
        [python, "-c", _LIBROSA_TEMPO],
        input="\n".join(paths),
        capture_output=True,
        text=True,
        check=True,
    )
    return [float(v) for v in json.loads(done.stdout.strip().splitlines()[-1])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--per-cell", type=int, default=2, help="clips per (style, tempo, bars)")
    parser.add_argument("--librosa-python", help="an interpreter with librosa, to compare")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="timbre-bench-analysis-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        results: dict[str, Any] = {
            "analysis_version": ANALYSIS_VERSION,
            "per_cell": args.per_cell,
            "tempo": bench_tempo(folder, args.per_cell, args.librosa_python),
            "key": bench_key(folder, args.per_cell),
            "refusals": bench_refusals(),
            "cost": bench_cost(folder),
            "decode_stage_demo_library": bench_decode_stage(folder),
            "worker": bench_worker_cost(args.librosa_python),
            "machine": machine(),
        }
        results["bench_wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps({k: v for k, v in results.items() if k != "machine"}, indent=2))
    write_results("analysis", results)


if __name__ == "__main__":
    main()
