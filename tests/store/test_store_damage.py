"""A truncated shard file: reported by readiness and stats, refused by ingest, rebuilt by command.

Qdrant Edge opens a shard whose payload file was cut short without a word; the damage shows
only when a page is read. Before, ``/readyz`` said ready, ``/v1/stats`` showed no error, every
filtered search failed and ``timbre ingest`` exited 0.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from ingest.synthetic import make_library
from tests.conftest import EXPORT_DIR_ENV
from tests.support.api_fixtures import api_settings, opened
from tests.support.ingest_helpers import ingest, job_settings, read_store
from timbre.cli import app as cli_app
from timbre.errors import StoreDamagedError


def _truncate_payloads(data: Path) -> Path:
    """Cut the live shard's payload page short, as a crash or a full disk can leave it."""
    live = json.loads((data / "qdrant-edge" / "LIVE").read_text())["collection"]
    (page,) = (data / "qdrant-edge" / "collections" / live).rglob("payload_storage/page_0.dat")
    with page.open("r+b") as out:
        out.truncate(4096)
    return page


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(
        a[k][0] == b[k][0] and np.array_equal(a[k][1], b[k][1]) for k in a
    )


def test_a_truncated_shard_is_reported_refused_and_rebuilt(
    tmp_path: Path,
    tiny_bundle: Path,
    audio_embedder: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    library = make_library(
        tmp_path / "lib", one_shots_per_pack=2, loops_per_pack=0, loop_bars=(1,), broken=False
    )
    data = tmp_path / "data"
    settings = job_settings(tiny_bundle, data)
    ingest(settings, audio_embedder, [library.root])
    clean = read_store(settings, audio_embedder)
    _truncate_payloads(data)

    for rehash in (False, True):
        with pytest.raises(StoreDamagedError, match="timbre store rebuild"):
            ingest(settings, audio_embedder, [library.root], rehash=rehash)

    with opened(api_settings(tiny_bundle, data, library), wait_ready=False) as client:
        reply = client.get("/readyz")
        deadline = time.monotonic() + 120
        while "store damaged" not in reply.text and time.monotonic() < deadline:
            time.sleep(0.1)  # the read-back runs beside the model load, within seconds
            reply = client.get("/readyz")
        assert reply.status_code == 503
        assert "store damaged" in reply.json()["detail"]
        assert "timbre store rebuild" in reply.json()["detail"]
        stats = client.get("/v1/stats").json()
        assert "damaged" in stats["store"]["error"]

    # The documented command, as a person runs it (its settings from the environment).
    for key, value in {
        "TIMBRE_DATA_DIR": str(data),
        "TIMBRE_MODELS__BUNDLE": str(tiny_bundle),
        "TIMBRE_MODELS__THREADS": "2",
    }.items():
        monkeypatch.setenv(key, value)
    assert EXPORT_DIR_ENV in os.environ  # the session's ONNX exports, reused
    result = CliRunner().invoke(cli_app, ["store", "rebuild"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert report["points"] == len(clean) and report["rebuilt_from"].startswith("snapshot")

    assert _same(read_store(settings, audio_embedder), clean)  # every field, every vector
    again = ingest(settings, audio_embedder, [library.root])  # and writable again
    assert again.exit_code == 0 and again.summary["counts"]["already_indexed"] == len(clean)
