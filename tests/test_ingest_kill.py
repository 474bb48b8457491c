"""Kill the ingest job with SIGKILL at several points; the resumed store equals a clean run's."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ingest.synthetic import make_library
from tests.conftest import keep_export_dir
from tests.ingest_helpers import job_settings, read_store

pytestmark = pytest.mark.filterwarnings("ignore::timbre.embedding.files.RandomWeightsWarning")

PROGRESS = re.compile(r"progress: (\d+)/(\d+) files embedded")


def _env(bundle: Path, data: Path) -> dict[str, str]:
    env = keep_export_dir({k: v for k, v in os.environ.items() if not k.startswith("TIMBRE_")})
    env.update(
        TIMBRE_DATA_DIR=str(data),
        TIMBRE_MODELS__BUNDLE=str(bundle),
        TIMBRE_INGEST__PROGRESS_INTERVAL_S="0.1",
        TIMBRE_INGEST__BATCH_FILES="4",
        PYTHONWARNINGS="ignore",
    )
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "timbre.cli", "ingest", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _kill_when(args: list[str], env: dict[str, str], when: str, fraction: float = 0.0) -> None:
    """Start a job and SIGKILL it when its log shows ``when`` (and ``fraction`` embedded)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "timbre.cli", "ingest", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 300
    try:
        for line in proc.stderr:
            match = PROGRESS.search(line)
            hit = when in line
            if match and when == "progress":
                done, total = int(match[1]), int(match[2])
                hit = total > 0 and done / total >= fraction
            if hit:
                proc.send_signal(signal.SIGKILL)
                break
            assert time.monotonic() < deadline
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the job ended before the kill point {when!r}"


@pytest.fixture(scope="module")
def small_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lib = make_library(
        tmp_path_factory.mktemp("lib") / "Samples",
        one_shots_per_pack=10,
        loops_per_pack=2,
        loop_bars=(1,),
    )
    return lib.root


@pytest.fixture(scope="module")
def clean(
    small_library: Path, tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory, audio_embedder
):  # type: ignore[no-untyped-def]
    data = tmp_path_factory.mktemp("clean")
    done = _run([str(small_library)], _env(tiny_bundle, data))
    assert done.returncode == 1, done.stderr[-2000:]  # the library has broken files
    return read_store(job_settings(tiny_bundle, data), audio_embedder)


@pytest.mark.parametrize(
    ("when", "fraction"),
    [
        ("creating collection", 0.0),  # before any file is embedded
        ("progress", 0.3),  # a third of the way
        ("progress", 0.8),  # most of the way
        ("done:", 0.0),  # everything embedded, snapshot export under way
    ],
)
def test_kill_and_resume_equals_a_clean_run(
    when: str,
    fraction: float,
    small_library: Path,
    tiny_bundle: Path,
    tmp_path: Path,
    clean,
    audio_embedder,  # type: ignore[no-untyped-def]
) -> None:
    env = _env(tiny_bundle, tmp_path / "data")
    _kill_when([str(small_library)], env, when, fraction)
    resumed = _run([str(small_library)], env)
    assert resumed.returncode == 1, resumed.stderr[-2000:]
    store = read_store(job_settings(tiny_bundle, tmp_path / "data"), audio_embedder)
    assert set(store) == set(clean)
    for pid, (payload, vector) in store.items():
        assert payload == clean[pid][0]
        np.testing.assert_allclose(vector, clean[pid][1], atol=1e-6)
    # the snapshot published by the resumed run holds everything
    import json

    summary = json.loads(resumed.stdout)
    assert summary["snapshot"]["count"] == len(clean)
