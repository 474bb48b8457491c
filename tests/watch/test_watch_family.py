"""``timbre serve`` with ``watch.enabled`` on a data dir indexed by another model family.

Its jobs could only fail (the live collection takes no vectors of the configured family), so
the service does not start the watcher: it says why once, in its log and in ``/v1/stats``, and
goes on answering.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from tests.support.audio_factory import hat, kick
from tests.support.ingest_helpers import ingest
from timbre.settings import Settings, load_settings

RATE_HZ = 22_050


def _settings(family: str, bundle: Path, data: Path, lib: Path) -> Settings:
    return load_settings(
        data_dir=data,
        models={"family": family, "bundle": bundle, "threads": 2},
        ingest={"progress_interval_s": 0.2, "workers": 0, "profile": "sequential"},
        watch={"enabled": True, "roots": [lib], "debounce_s": 0.1, "settle_s": 0.1, "tick_s": 0.05},
    )


@pytest.fixture(scope="module")
def clap_audio(clap_settings: Settings) -> Any:
    from timbre.embedding.embedder import load_audio_embedder

    return load_audio_embedder(clap_settings.models)


@pytest.mark.parametrize("indexed_with", ["clap", "clamp3"])
def test_serve_does_not_watch_a_data_dir_of_another_family(
    indexed_with: str,
    tmp_path: Path,
    tiny_bundle: Path,
    clap_bundle: Path,
    audio_embedder: Any,
    clap_audio: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from timbre.cli.wiring import build_app

    lib = (tmp_path / "Samples").resolve()
    (lib / "Drums").mkdir(parents=True)
    for i in range(2):
        sf.write(lib / "Drums" / f"Kick {i}.wav", kick(RATE_HZ, 0.3, 45.0 + 15 * i), RATE_HZ)
    bundles = {"clap": clap_bundle, "clamp3": tiny_bundle}
    embedders = {"clap": clap_audio, "clamp3": audio_embedder}
    served = "clamp3" if indexed_with == "clap" else "clap"
    data = tmp_path / "data"
    indexed = _settings(indexed_with, bundles[indexed_with], data, lib)
    assert ingest(indexed, embedders[indexed_with], [lib]).exit_code == 0

    settings = _settings(served, bundles[served], data, lib)
    caplog.set_level(logging.INFO)
    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        sf.write(tmp_path / "Hat.wav", hat(RATE_HZ, 0.15), RATE_HZ)
        shutil.copy(tmp_path / "Hat.wav", lib / "Drums" / "Hat.wav")
        time.sleep(1.0)  # a watcher would have batched the new file by now
        stats = client.get("/v1/stats")
        assert stats.status_code == 200, stats.text
        assert indexed_with in stats.json()["store"]["error"]
        watch = stats.json()["watch"]
        assert watch["enabled"] is False and watch["running_job"] is None
        reason = watch["refused"]
        assert f"{indexed_with} model family" in reason and f"models.family is {served}" in reason
        assert "timbre ingest" in reason
        assert watch["problems"] == [reason]
        assert client.app.state.jobs.jobs == {}  # type: ignore[attr-defined]
        # Still answering; a search says why it cannot, as before.
        assert client.get("/healthz").status_code == 200
        search = client.post("/v1/search/text", json={"query": "kick", "top_k": 3})
        assert 400 <= search.status_code < 500 or search.status_code == 503, search.text
        assert indexed_with in search.text
    said = [r.getMessage() for r in caplog.records if r.name == "timbre.watch"]
    assert sum("not watching" in m for m in said) == 1, said
    assert not any("Traceback" in m for m in said)


def test_the_refusal_names_the_family_when_the_vector_sizes_differ(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    """Real checkpoints of two families differ in size (768 and 512): the store trips on the
    size first, and the reason must still name the families."""
    from dataclasses import replace

    from tests.support.store_factory import model_info
    from timbre.cli.watching import watch_refusal
    from timbre.cli.wiring import build_library
    from timbre.errors import ModelMismatchError
    from timbre.store import open_store

    settings = _settings("clamp3", tiny_bundle, tmp_path / "data", tmp_path / "Samples")
    clap = replace(model_info(dim=64), family="clap", clap="laion/x@r1", mert="", clamp3="")
    open_store(settings, clap).close()  # the first, live collection: 64-d, of the clap family
    library = build_library(settings)
    try:
        refusal = watch_refusal(settings, library)
    finally:
        library.store.close()
    assert isinstance(refusal, ModelMismatchError)
    reason = str(refusal)
    assert "clap model family" in reason and "models.family is clamp3" in reason, reason
    assert "Run `timbre ingest`" in reason
