"""MERT passes in flight at once (``models.mert_streams``): a parallel ingest job runs one pass
per thread, the service and a sequential job one pass on every thread, and however they run
the vectors are the same."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.support.audio_factory import chord_loop, hat, kick, tone
from timbre.cli.wiring import build_library
from timbre.embedding.clamp3_onnx import OrtMertEncoder
from timbre.embedding.embedder import load_audio_embedder
from timbre.settings import Settings

SR = 24000
CLIPS = [kick(SR), hat(SR), kick(SR, 0.4, 70.0), tone(SR, 2.2), chord_loop(SR, 16.0, seed=2)]
"""Windows of five lengths: the 16 s loop gives three equal windows and a shorter last one."""


def _intra_threads(mert: OrtMertEncoder) -> int:
    return int(mert.graph.session.get_session_options().intra_op_num_threads)


def _load(settings: Settings, batches: bool = True, **update: Any) -> Any:
    return load_audio_embedder(settings.models.model_copy(update=update), batches=batches)


def test_a_job_runs_one_pass_per_thread_with_the_same_vectors(
    settings: Settings, audio_embedder: Any
) -> None:
    """The fixture's embedder is a job's (threads 2, ``auto``): two passes on one thread each,
    bitwise equal to one pass at a time on both threads."""
    assert settings.models.mert_streams == "auto"
    two, one = audio_embedder.mert, _load(settings, mert_streams=1).mert
    assert (two.streams, _intra_threads(two)) == (2, 1)
    assert (one.streams, _intra_threads(one)) == (1, 2)
    together = audio_embedder.features(CLIPS)
    alone = [audio_embedder.features([clip])[0] for clip in CLIPS]
    apart = _load(settings, mert_streams=1).features(CLIPS)
    for a, b, c in zip(together, alone, apart, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


class _Overlapping:
    """A graph whose first two calls must be in flight together (else the barrier breaks)."""

    def __init__(self, graph: Any) -> None:
        self.graph = graph
        self.barrier = threading.Barrier(2, timeout=10)
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, **feeds: np.ndarray) -> np.ndarray:
        with self.lock:
            self.calls += 1
            first_two = self.calls <= 2
        if first_two:
            self.barrier.wait()
        return np.asarray(self.graph(**feeds))


def test_the_passes_really_overlap(audio_embedder: Any) -> None:
    mert = audio_embedder.mert
    graph = _Overlapping(mert.graph)
    streamed = OrtMertEncoder(
        graph,  # type: ignore[arg-type]
        sample_rate=mert.sample_rate,
        hidden_size=mert.hidden_size,
        num_layers=mert.num_layers,
        streams=2,
    )
    windows = [CLIPS[0], CLIPS[1], CLIPS[3]]  # three lengths: three passes
    out = streamed.window_vectors(windows, 1)
    assert graph.calls == 3
    np.testing.assert_array_equal(out, mert.window_vectors(windows, 1))


def test_an_error_in_one_pass_reaches_the_caller(audio_embedder: Any) -> None:
    """A window too short for MERT's convolutions fails in its pass; the others' results
    do not hide it."""
    with pytest.raises(Exception, match="Invalid input shape"):  # onnxruntime's own type
        audio_embedder.mert.window_vectors([CLIPS[0], np.zeros(4, np.float32)], 1)


def test_one_file_per_call_runs_one_pass_on_every_thread(settings: Settings) -> None:
    """The service (an audio query waits for its one upload) and the sequential profile."""
    service = build_library(settings).audio.get().mert
    sequential = _load(settings, batches=False).mert
    for mert in (service, sequential):
        assert (mert.streams, _intra_threads(mert)) == (1, 2)
    configured = _load(settings, batches=False, mert_streams=2).mert
    assert (configured.streams, _intra_threads(configured)) == (2, 1)  # a set count is kept


def test_each_ingest_profile_runs_its_streams(
    tmp_path: Path, tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``timbre ingest``: two passes at once in the parallel profile, one in the sequential."""
    import ingest.job
    from timbre.cli import app

    ran: dict[str, tuple[int, int]] = {}

    def job(settings: Any, options: Any, *, embedder: Any, **_: Any) -> None:
        ran[options.profile] = (embedder.mert.streams, _intra_threads(embedder.mert))
        raise SystemExit(0)  # the job itself is tested elsewhere

    monkeypatch.setattr(ingest.job, "run_ingest", job)
    (tmp_path / "lib").mkdir()
    env = {
        "TIMBRE_DATA_DIR": str(tmp_path / "data"),
        "TIMBRE_MODELS__BUNDLE": str(tiny_bundle),
        "TIMBRE_MODELS__THREADS": "2",
    }
    for profile in ("parallel", "sequential"):
        args = ["ingest", str(tmp_path / "lib"), "--profile", profile]
        CliRunner().invoke(app, args, env=env, catch_exceptions=False)
    assert ran == {"parallel": (2, 1), "sequential": (1, 2)}


def test_streams_are_set_by_number_or_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    from timbre.errors import ConfigError
    from timbre.settings import load_settings

    monkeypatch.setenv("TIMBRE_MODELS__MERT_STREAMS", "3")
    assert load_settings().models.mert_streams == 3
    monkeypatch.setenv("TIMBRE_MODELS__MERT_STREAMS", "0")
    with pytest.raises(ConfigError, match="mert_streams"):
        load_settings()
