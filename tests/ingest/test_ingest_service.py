"""Ingest beside a running service: every option travels, the service knows its data dir's
roots, and a second ``timbre serve`` on one data dir refuses to start."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import soundfile as sf
from fastapi.testclient import TestClient

from app.schemas import IngestIn
from tests.ingest.test_ingest_kill import _env
from tests.support.audio_factory import kick
from tests.support.ingest_helpers import ingest, job_settings
from timbre.cli.handoff import _refusal, job_body


def test_every_cli_option_travels_to_the_service() -> None:
    from typer.main import get_command

    from timbre.cli import app

    command = get_command(app).commands["ingest"]  # type: ignore[attr-defined]
    # --json only shapes what the command prints, whoever ran the job
    options = {p.name for p in command.params if p.name not in ("paths", "as_json")}
    to_body = {"no_snapshot": "snapshot"}
    # changed/gone are a watcher's batch (timbre watch, watch.enabled), not ingest options.
    batch_only = {"paths", "changed", "gone"}
    assert {to_body.get(o, o) for o in options} == set(IngestIn.model_fields) - batch_only
    given = {
        "profile": "sequential",
        "workers": 0,
        "batch_files": 3,
        "shard": (1, 2),
        "prune": True,
        "dry_run": True,
        "rehash": True,
        "snapshot": False,
    }
    body = job_body(IngestIn(paths=["lib"], **given))
    assert body["paths"] == [str(Path("lib").resolve())]
    assert IngestIn.model_validate(body).model_dump(exclude=batch_only) == given
    # Options not given are left to the service's settings.
    assert job_body(IngestIn(paths=["/no/lib"])) == {"paths": ["/no/lib"], **NOT_ASKED}
    # The body's old name of batch_files is still accepted.
    assert IngestIn.model_validate({"paths": ["/lib"], "batch_size": 7}).batch_files == 7


NOT_ASKED = {"prune": False, "dry_run": False, "rehash": False, "gone": []}


def test_a_refusal_says_exactly_what_to_set() -> None:
    refused = httpx.Response(403, json={"detail": "path '/new' is not inside a library root"})
    text = str(_refusal("http://x", refused, ["/new"]))
    assert "TIMBRE_API__LIBRARY_ROOTS='[\"/new\"]'" in text and "restart" in text


def _library(root: Path) -> Path:
    for i in range(6):
        path = root / "Kicks" / f"Kick_{i:02d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, kick(44100, 0.2 + 0.05 * i, pitch_hz=40.0 + 7 * i), 44100)
    return root


def test_the_service_takes_jobs_for_its_data_dirs_roots_with_every_option(
    tmp_path: Path, tiny_bundle: Path, audio_embedder: Any
) -> None:
    from timbre.cli.wiring import build_app

    lib = _library(tmp_path / "Samples")
    settings = job_settings(tiny_bundle, tmp_path / "data")
    assert settings.api.library_roots == []  # the default: no roots configured
    ingest(settings, audio_embedder, [lib], snapshot=False)
    (lib / "Kicks" / "Kick_New.wav").write_bytes((lib / "Kicks" / "Kick_00.wav").read_bytes())
    body = {
        "paths": [str(lib)],
        "shard": [0, 2],
        "snapshot": False,
        "workers": 0,
        "batch_size": 2,  # batch_files' old name
        "profile": "sequential",
        "rehash": True,
    }
    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        outside = client.post("/v1/ingest", json={"paths": [str(tmp_path)]})
        assert outside.status_code == 403
        started = client.post("/v1/ingest", json=body)
        assert started.status_code == 202, started.text
        job = started.json()["job_id"]
        deadline = time.monotonic() + 300
        while (state := client.get(f"/v1/ingest/{job}").json())["state"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        bad = client.post("/v1/ingest", json={"paths": [str(lib)], "shard": [2, 2]})
        assert bad.status_code == 422
    assert state["state"] == "finished", state
    summary = state["summary"]
    assert summary["shard"] == [0, 2] and summary["profile"] == "sequential"
    assert summary["counts"]["other_shards"] > 0
    assert "snapshot" not in summary  # snapshot: false travelled
    assert summary["counts"]["discovered"] == 7


def test_a_second_service_on_one_data_dir_refuses_to_start(tmp_path: Path) -> None:
    from timbre.cli.owner import SERVICE_FILE, claim_data_dir, write_service_file
    from timbre.settings import load_settings

    data = tmp_path / "data"
    settings = load_settings(data_dir=data)
    owner = claim_data_dir(settings)  # this test process plays the running service
    try:
        write_service_file(settings, "http://127.0.0.1:1")
        before = (data / SERVICE_FILE).read_text()
        env = {**_env(tmp_path / "no-bundle", data), "TIMBRE_API__PORT": "1"}
        second = subprocess.run(
            [sys.executable, "-m", "timbre.cli", "serve"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert second.returncode == 2, second.stderr[-2000:]
        assert "in use by process" in second.stderr and "One `timbre serve` per data dir" in (
            second.stderr
        )
        assert (data / SERVICE_FILE).read_text() == before  # the owner's file, untouched
        assert json.loads(before)["url"] == "http://127.0.0.1:1"
    finally:
        owner.release()
