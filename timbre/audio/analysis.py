"""What a sample's audio says about it: tempo, key and waveform peaks, in one pass at ingest.

Ingest runs :func:`analyse` in its decoding workers on the mono model-rate samples it has
just decoded, so nothing is read twice. The estimators are this project's own short DSP on
numpy (:mod:`timbre.audio.tempo`, :mod:`timbre.audio.key`), not librosa: librosa would add
scipy, scikit-learn and numba/llvmlite (~370 MB installed) and, measured here, ~250 MB of
resident memory and ~3 s of warm-up (30 s on a cold numba cache) to every decoding worker,
against ~5 ms of CPU per audio-second for this module (``bench/bench_analysis.py``).

Every result is re-derivable from the audio: it depends only on the samples, their rate, the
file's duration and :data:`ANALYSIS_VERSION`, which names the algorithms and every constant
they use. Change either estimator's behaviour and bump the version.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from timbre.audio.envelope import Envelope, measure_envelope
from timbre.audio.key import KeyEstimate, estimate_key
from timbre.audio.peaks import PEAKS_FORMAT, compute_peaks, encode_peaks
from timbre.audio.tempo import TempoEstimate, estimate_tempo

ANALYSIS_VERSION = f"timbre-dsp-1+env1+peaks{PEAKS_FORMAT}"
"""Version of the audio analysis stored with each point (payload ``analysis_version``):
tempo 1 (band onsets, circular autocorrelation comb, accent octave, whole-bar refinement),
key 1 (tonal-peak chroma, Krumhansl-Kessler profiles, thirds for the mode, opening bass for
relative keys), envelope 1 (re-attacks and the final level, for the kind) and the peaks
format."""


@dataclass(frozen=True)
class Heard:
    """The audio's own facts about a sample.

    Attributes:
        tempo: the estimate, or None (not asked, too short, or no steady pulse).
        key: the estimate, or None (not asked, or not clearly pitched with a told mode).
        peaks: the waveform peaks as stored in the payload (:func:`encode_peaks`).
        envelope: whether the sound decays or repeats (None for silence).
        version: :data:`ANALYSIS_VERSION`.
    """

    tempo: TempoEstimate | None
    key: KeyEstimate | None
    peaks: str
    envelope: Envelope | None = None
    version: str = ANALYSIS_VERSION


def analyse(
    samples: np.ndarray,
    sample_rate: int,
    duration_s: float | None = None,
    *,
    tempo: bool = True,
    key: bool = True,
) -> Heard:
    """Peaks and the envelope always; tempo and key when asked (ingest skips what the names
    already say).

    Args:
        samples: mono float samples, finite, at least one.
        sample_rate: their rate (Hz).
        duration_s: the file's exact duration (before resampling), for the whole-bar tempo.
        tempo: estimate the tempo (ingest asks only for loops).
        key: estimate the key.

    Raises:
        ValueError: no samples, or non-finite samples.
    """
    x = np.asarray(samples, dtype=np.float32).ravel()
    peaks = encode_peaks(compute_peaks(x))  # validates: non-empty and finite
    return Heard(
        tempo=estimate_tempo(x, sample_rate, duration_s) if tempo else None,
        key=estimate_key(x, sample_rate) if key else None,
        peaks=peaks,
        envelope=measure_envelope(x, sample_rate),
    )
