"""A re-derive hears a file exactly as ingest decoded it: at the family's rate, by the
family's resampler (the clap family's soxr_vhq, not the default sinc).

A rename that drops the tempo a name stated makes the re-derive hear the file again; its
audio facts (peaks, the envelope's kind, tempo) must then equal a clean ingest's, else a
moved file of a clap index drifts from a fresh one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from tests.support.audio_factory import chord_loop, hat
from tests.support.ingest_helpers import ingest, read_store
from timbre.settings import Settings, load_settings

SR = 44_100  # not the clap family's 48 kHz: every file is resampled


def _settings(bundle: Path, data_dir: Path) -> Settings:
    return load_settings(
        data_dir=data_dir,
        models={"family": "clap", "bundle": bundle, "threads": 2},
        ingest={"progress_interval_s": 0.2, "workers": 0},
    )


@pytest.fixture(scope="module")
def clap_audio(clap_settings: Settings) -> Any:
    from timbre.embedding.embedder import load_audio_embedder

    return load_audio_embedder(clap_settings.models)


def test_a_rederive_on_the_clap_family_hears_as_ingest_did(
    tmp_path: Path, clap_bundle: Path, clap_audio: Any
) -> None:
    assert clap_audio.resampler == "soxr_vhq"
    lib = (tmp_path / "lib").resolve()
    loop = lib / "Kit" / "Bass_124bpm_Am_Loop.wav"
    loop.parent.mkdir(parents=True)
    sf.write(loop, chord_loop(SR, 60 / 124 * 8) + 0.3 * hat(SR, 60 / 124 * 8), SR)
    settings = _settings(clap_bundle, tmp_path / "data")
    assert ingest(settings, clap_audio, [lib], snapshot=False).exit_code == 0

    # The name no longer states the tempo: the stored answers do not settle it, the file is
    # heard again.
    renamed = loop.rename(loop.with_name("Bass_Loop.wav"))
    job = ingest(settings, clap_audio, [lib], changed=(renamed,), gone=(loop,), snapshot=False)
    assert job.summary["counts"]["rederived"] == 1

    clean = _settings(clap_bundle, tmp_path / "clean-data")
    assert ingest(clean, clap_audio, [lib], snapshot=False).exit_code == 0
    [(got, got_vector)] = read_store(settings, clap_audio).values()
    [(want, want_vector)] = read_store(clean, clap_audio).values()
    assert got["peaks"] == want["peaks"]
    assert got == want
    assert np.array_equal(got_vector, want_vector)
