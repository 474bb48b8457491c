"""``timbre watch``: headless watching, and its refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
from typer.testing import CliRunner

from tests.ingest.test_ingest_kill import _env
from tests.support.audio_factory import kick
from timbre.cli import app


def test_watch_refuses_beside_a_running_service_and_says_what_to_do(tmp_path: Path) -> None:
    from timbre.cli.owner import SERVICE_FILE, write_service_file
    from timbre.settings import load_settings

    data = tmp_path / "data"
    write_service_file(load_settings(data_dir=data), "http://127.0.0.1:9")  # this process: alive
    before = (data / SERVICE_FILE).read_text()
    result = CliRunner().invoke(app, ["watch", str(tmp_path)], env={"TIMBRE_DATA_DIR": str(data)})
    assert result.exit_code == 2, result.output
    assert "owns the data dir" in result.output and "TIMBRE_WATCH__ENABLED=true" in result.output
    assert (data / SERVICE_FILE).read_text() == before


def test_watch_with_nothing_to_watch_says_how_to_name_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["watch"], env={"TIMBRE_DATA_DIR": str(tmp_path / "d")})
    assert result.exit_code == 2
    assert "nothing to watch" in result.output and "watch.roots" in result.output


@pytest.mark.slow
def test_watch_indexes_headless_and_stops_on_ctrl_c(tmp_path: Path, tiny_bundle: Path) -> None:
    lib = tmp_path / "Samples"
    (lib / "Kicks").mkdir(parents=True)
    sf.write(lib / "Kicks" / "Kick_0.wav", kick(22050, 0.3), 22050)
    data = tmp_path / "data"
    env = {**_env(tiny_bundle, data), "TIMBRE_WATCH__DEBOUNCE_S": "0.2"}
    env["TIMBRE_WATCH__SETTLE_S"] = "0.2"
    proc = subprocess.Popen(
        [sys.executable, "-m", "timbre.cli", "watch", str(lib)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 300
        lines: list[str] = []
        embedded: dict[str, int] = {}  # job id -> files it embedded
        for line in proc.stderr:  # the status lines: reconciliation, then the new file
            lines.append(line)
            job = json.loads(line).get("last_job") if line.startswith("{") else None
            if job and job["state"] == "finished":
                if not embedded:
                    sf.write(lib / "Kicks" / "Kick_1.wav", kick(22050, 0.4, pitch_hz=80.0), 22050)
                embedded[job["job_id"]] = job["summary"]["embedded"]
                if len(embedded) == 2:
                    break
            assert time.monotonic() < deadline, "".join(lines[-20:])
        assert list(embedded.values()) == [1, 1], "".join(lines[-20:])
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 0, "".join(lines[-20:])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reports = sorted((data / "reports").glob("ingest-*-summary.json"))
    assert len(reports) >= 2
