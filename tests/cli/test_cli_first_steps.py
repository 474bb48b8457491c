"""A new user's first commands without a hub: fail fast, remember quickstart's bundle, keep
the terminal readable.

Each command runs as a real process (``python -m timbre.cli``): huggingface_hub reads
``HF_ENDPOINT`` when it is imported, and the unreachable hub here is a closed loopback port.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import keep_export_dir
from tests.support.audio_factory import hat, kick, write
from tests.support.fake_hub import run_timbre
from timbre.bundle_record import RECORD_FILE, record_bundle

STALLED_S = 20.0
"""huggingface_hub's own retries took 24 s per file before the command gave up."""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path, data: Path) -> dict[str, str]:
    env = keep_export_dir({k: v for k, v in os.environ.items() if not k.startswith("TIMBRE_")})
    env.update(
        TIMBRE_DATA_DIR=str(data),
        TIMBRE_MODELS__THREADS="2",
        HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}",
        HF_HOME=str(tmp_path / "hf-home"),  # an empty hub cache
        COLUMNS="200",
    )
    env.pop("HF_HUB_OFFLINE", None)
    return env


def _timbre(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_timbre(args, env, timeout_s=600)  # quickstart builds a whole demo index


def _library(root: Path) -> Path:
    write(root / "Kicks" / "Kick_Deep.wav", kick(44100, 0.4), 44100)
    write(root / "Hats" / "Hat_Closed.wav", hat(44100, 0.12), 44100)
    return root


def _assert_for_people(stderr: str) -> None:
    """No log levels, no tracebacks or source lines, no line said twice."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert not [line for line in lines if re.search(r"\bINFO\b|\bDEBUG\b", line)], stderr
    assert "Traceback" not in stderr, stderr
    assert not [line for line in lines if re.match(r'\s+File "|\s{2,}\S+ = ', line)], stderr
    assert "Retry" not in stderr, stderr
    warnings = [line for line in lines if line.startswith("warning:")]
    assert len(warnings) == len(set(warnings)), stderr


def test_an_unreachable_hub_fails_at_once_and_names_the_bundle_option(tmp_path: Path) -> None:
    env = _env(tmp_path, tmp_path / "data")
    started = time.monotonic()
    done = _timbre(["ingest", str(_library(tmp_path / "lib"))], env)
    took = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert took < STALLED_S, f"{took:.1f} s"
    assert "TIMBRE_MODELS__BUNDLE" in done.stderr.splitlines()[-1], done.stderr
    assert "cannot be reached" in done.stderr
    _assert_for_people(done.stderr)


def test_a_recorded_bundle_is_used_by_every_later_command(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    data = tmp_path / "data"
    record_bundle(data, tiny_bundle, reason="no hub when quickstart ran")
    env = _env(tmp_path, data)
    started = time.monotonic()
    done = _timbre(["ingest", str(_library(tmp_path / "lib")), "--json"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert time.monotonic() - started < 120  # (the model load, not a hub stall)
    summary = json.loads(done.stdout)
    assert summary["counts"]["indexed"] == 2
    assert done.stderr.count("recorded for this data dir") == 1, done.stderr
    assert done.stderr.count("RANDOM WEIGHTS") == 1, done.stderr
    _assert_for_people(done.stderr)
    written = sorted((data / "reports").glob("ingest-*-summary.json"))
    assert json.loads(written[-1].read_text(encoding="utf-8")) == summary


@pytest.mark.slow
def test_quickstart_records_its_bundle_for_the_next_commands(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = _env(tmp_path, data)
    first = _timbre(["quickstart", str(_library(tmp_path / "lib"))], env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (data / RECORD_FILE).is_file()
    assert "indexed 2 new of 2" in first.stdout, first.stdout
    _assert_for_people(first.stderr)
    done = run_timbre(["search", "kick", "--json"], env, timeout_s=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(json.loads(done.stdout)["hits"]) == 2
    assert done.stderr.count("recorded for this data dir") == 1, done.stderr


def test_a_configured_bundle_wins_over_the_record(tmp_path: Path, tiny_bundle: Path) -> None:
    from timbre.settings import load_settings

    data = tmp_path / "data"
    record_bundle(data, tmp_path / "elsewhere", reason="test")
    assert load_settings(data_dir=data).models.bundle == (tmp_path / "elsewhere").resolve()
    chosen = load_settings(data_dir=data, models={"bundle": tiny_bundle}).models.bundle
    assert chosen == tiny_bundle


@pytest.mark.slow
def test_the_demo_gets_a_data_dir_of_its_own(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = run_timbre(["quickstart"], _env(tmp_path, data), timeout_s=600)
    assert done.returncode == 0, done.stderr[-3000:]
    demo = data / "demo"
    assert (demo / "qdrant-edge" / "LIVE").is_file()
    assert not (data / "qdrant-edge").exists()  # the user's own index holds no demo sample
    assert (demo / "library" / "Techno Essentials Vol 1" / "One Shots" / "Bass").is_dir()
    assert f"TIMBRE_DATA_DIR='{demo}' timbre serve" in done.stderr


def test_the_demo_folders_are_named_as_packs_name_them(tmp_path: Path) -> None:
    from ingest.synthetic import make_library

    library = make_library(tmp_path / "demo", one_shots_per_pack=5, loops_per_pack=0)
    folders = {p.parent.name for p in library.files}
    assert "Bass" in folders and "Kicks" in folders, folders
    assert not [f for f in folders if f.endswith("ss" + "s")], folders


def test_the_mcp_stdio_servers_stderr_is_for_people(
    mcp_indexed_dir: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    env = _env(tmp_path, mcp_indexed_dir)
    env["TIMBRE_MODELS__BUNDLE"] = str(tiny_bundle)
    server = subprocess.Popen(
        [sys.executable, "-m", "timbre.cli", "mcp"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None

    def send(message: dict[str, object]) -> None:
        assert server.stdin is not None
        server.stdin.write(json.dumps({"jsonrpc": "2.0", **message}) + "\n")
        server.stdin.flush()

    try:
        send(
            {
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "test", "version": "0"},
                },
            }
        )
        assert json.loads(server.stdout.readline())["id"] == 1
        send({"method": "notifications/initialized"})
        call = {"name": "search_samples", "arguments": {"query": "punchy kick", "top_k": 3}}
        send({"id": 2, "method": "tools/call", "params": call})
        answer = json.loads(server.stdout.readline())
        assert answer["id"] == 2 and not answer["result"].get("isError"), answer
        server.stdin.close()
        stderr = server.stderr.read() if server.stderr else ""
        server.wait(timeout=60)
    finally:
        server.kill()
    _assert_for_people(stderr)


def test_behind_a_proxy_the_probe_asks_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine that reaches the hub only through its proxy must not be taken for offline."""
    from timbre.embedding import hub

    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen()
        endpoint = "https://hub.invalid"  # no such host: only the proxy is reachable
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.getsockname()[1]}")
        monkeypatch.setenv("NO_PROXY", "")
        monkeypatch.setattr(hub, "_probed", {})
        assert hub.hub_unreachable(3.0) is None
    monkeypatch.setattr(hub, "_probed", {})
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{_closed_port()}")
    assert "through the proxy" in (hub.hub_unreachable(3.0) or "")
