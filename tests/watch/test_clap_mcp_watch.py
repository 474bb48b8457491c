"""``timbre mcp``, the watcher and ``timbre reanalyse`` on a clap data dir.

One small library is indexed with ``models.family: clap`` (the tiny random clap bundle, on the
default runtime: its ONNX exports are the session's); then the MCP server over stdio answers
searches from the clap collection, a file copied into a watched folder lands in that
collection, a watcher of another family is refused at start, and a re-analysis rewrites facts
while every clap vector stays as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from mcp import Client, StdioServerParameters
from typer.testing import CliRunner

from tests.support.audio_factory import hat, kick
from tests.support.mcp_helpers import TIMBRE, session, structured
from timbre.cli import app
from timbre.settings import Settings, load_settings

RATE_HZ = 22_050
DEADLINE_S = 120.0


@pytest.fixture(scope="module")
def clap_env(tmp_path_factory: pytest.TempPathFactory, clap_bundle: Path) -> dict[str, str]:
    """The environment of a clap data dir, as a user sets it."""
    return {
        "TIMBRE_DATA_DIR": str(tmp_path_factory.mktemp("clap-cmds") / "data"),
        "TIMBRE_MODELS__FAMILY": "clap",
        "TIMBRE_MODELS__BUNDLE": str(clap_bundle),
        "TIMBRE_MODELS__THREADS": "2",
    }


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, clap_env: dict[str, str]) -> Path:
    """Four one-shots indexed into the clap collection by ``timbre ingest``."""
    lib = (tmp_path_factory.mktemp("clap-lib") / "Samples").resolve()
    (lib / "Drums").mkdir(parents=True)
    for i in range(3):
        sf.write(lib / "Drums" / f"Kick {i}.wav", kick(RATE_HZ, 0.3, 45.0 + 15 * i), RATE_HZ)
    sf.write(lib / "Drums" / "Hat 1.wav", hat(RATE_HZ, 0.15, seed=1), RATE_HZ)
    done = CliRunner().invoke(app, ["ingest", str(lib), "--json"], env=clap_env)
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout[done.stdout.index("{") :])
    assert summary["counts"]["indexed"] == 4, summary
    manifest = Path(clap_env["TIMBRE_DATA_DIR"]) / "snapshots" / summary["snapshot"]["name"]
    assert json.loads((manifest / "manifest.json").read_text())["model"]["family"] == "clap"
    return lib


def _settings(env: dict[str, str], **sections: Any) -> Settings:
    return load_settings(
        data_dir=env["TIMBRE_DATA_DIR"],
        models={
            "family": "clap",
            "bundle": env["TIMBRE_MODELS__BUNDLE"],
            "threads": 2,
        },
        **sections,
    )


def _points(settings: Settings) -> dict[str, tuple[dict[str, Any], np.ndarray]]:
    """Every point of the live collection: id -> (payload, vector)."""
    from timbre.embedding.embedder import describe_models
    from timbre.store import open_store

    store = open_store(settings, describe_models(settings.models))
    try:
        out = {}
        for record in store.live().scroll(with_vectors=True):
            assert record.vector is not None
            out[record.id] = (dict(record.payload), np.asarray(record.vector, dtype=np.float32))
        return out
    finally:
        store.close()


def test_mcp_over_stdio_answers_from_the_clap_collection(
    library: Path, clap_env: dict[str, str]
) -> None:
    from timbre.cli.wiring import build_app

    settings = _settings(clap_env, api={"library_roots": [str(library)]})
    one_shots = {"kind": "one_shot"}  # a filtered search: answered from the store, not FAISS
    with TestClient(build_app(settings)) as client:  # the clap service's answers, to compare
        plain = client.post("/v1/search/text", json={"query": "kick", "top_k": 3}).json()
        first = plain["hits"][0]["id"]
        calls = {
            "filtered": ("/v1/search/text", {"query": "kick", "top_k": 3, "filter": one_shots}),
            "similar": ("/v1/search/audio", {"id": first, "top_k": 3}),
            "steered": ("/v1/search/hybrid", {"id": first, "query": "dark", "top_k": 3}),
        }
        expected = {}
        for name, (url, request) in calls.items():
            reply = client.post(url, json=request)
            assert reply.status_code == 200, (name, reply.text)
            expected[name] = reply.json()
    expected["plain"] = plain

    env = {
        **clap_env,
        "TIMBRE_API__LIBRARY_ROOTS": json.dumps([str(library)]),
        **{k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "TIMBRE_MODELS__EXPORT_DIR")},
    }
    params = StdioServerParameters(command=str(TIMBRE), args=["mcp"], env=env)

    async def body(client: Client) -> dict[str, Any]:
        search, similar = "search_samples", "similar_samples"
        return {
            "plain": await client.call_tool(search, {"query": "kick", "top_k": 3}),
            "filtered": await client.call_tool(
                search, {"query": "kick", "top_k": 3, "filter": one_shots}
            ),
            "similar": await client.call_tool(similar, {"id": first, "top_k": 3}),
            "steered": await client.call_tool(similar, {"id": first, "query": "dark", "top_k": 3}),
            "sample": await client.call_tool("get_sample", {"id": first}),
        }

    got = session(Client(params, read_timeout_seconds=300), body)
    for name, want in expected.items():
        hits = structured(got[name])["hits"]
        assert [(h["id"], h["score"]) for h in hits] == [
            (e["id"], e["score"]) for e in want["hits"]
        ], name
        assert all(h["audio_url"].startswith("file://") for h in hits)
    assert structured(got["sample"])["id"] == first
    points = _points(settings)
    assert {points[h["id"]][0]["model"]["family"] for h in plain["hits"]} == {"clap"}


def test_a_file_copied_into_a_watched_folder_lands_in_the_clap_collection(
    library: Path, clap_env: dict[str, str], tmp_path: Path
) -> None:
    from timbre.cli.wiring import build_app

    settings = _settings(
        clap_env,
        ingest={"workers": 0, "profile": "sequential", "progress_interval_s": 0.2},
        watch={
            "enabled": True,
            "roots": [library],
            "debounce_s": 0.2,
            "settle_s": 0.2,
            "tick_s": 0.1,
        },
    )
    before = _points(settings)
    outside = tmp_path / "Snare 9.wav"
    sf.write(outside, kick(RATE_HZ, 0.25, 190.0), RATE_HZ)
    arrived = library / "Drums" / "Snare 9.wav"
    with TestClient(build_app(settings)) as client:
        shutil.copy(outside, arrived)
        deadline = time.monotonic() + DEADLINE_S
        while True:
            state = client.get("/v1/stats").json()["watch"]
            job = state["last_job"]
            if job and job["state"] != "running" and state["pending"] == 0:
                break
            assert time.monotonic() < deadline, state
            time.sleep(0.1)
        assert job["state"] == "finished" and job["exit_code"] == 0, job
        # Searchable at once, through the clap text tower: the new file is among the hits.
        hits = client.post("/v1/search/text", json={"query": "snare", "top_k": 10}).json()
        assert str(arrived) in {p for h in hits["hits"] for p in h["paths"]}
        like = client.post("/v1/search/audio", json={"path": str(arrived), "top_k": 1}).json()
        assert like["hits"][0]["path"] == str(arrived) and like["hits"][0]["score"] > 0.9999
    after = _points(settings)
    (new_id,) = set(after) - set(before)
    payload, vector = after[new_id]
    assert payload["paths"] == [str(arrived)] and payload["model"]["family"] == "clap"
    # labelled by the clap text tower's vocabulary, as `timbre ingest` labelled the rest
    assert {p["labels_version"] for p, _ in after.values()} == {payload["labels_version"]}
    assert vector.shape == before[next(iter(before))][1].shape
    for point_id, (_, old) in before.items():  # the rest untouched
        np.testing.assert_array_equal(after[point_id][1], old)


def test_watch_refuses_a_data_dir_of_another_family_and_says_what_to_do(
    library: Path, clap_env: dict[str, str], tiny_bundle: Path
) -> None:
    """A watcher configured for clamp3 on the clap data dir stops at once (it used to watch
    on, failing every batch with a traceback, and never indexed a change)."""
    env = {k: v for k, v in os.environ.items() if k != "TIMBRE_MODELS__FAMILY"}
    env.update(TIMBRE_DATA_DIR=clap_env["TIMBRE_DATA_DIR"], TIMBRE_MODELS__BUNDLE=str(tiny_bundle))
    done = subprocess.run(
        [sys.executable, "-m", "timbre.cli", "watch", str(library)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "clap model family" in done.stderr and "models.family is clamp3" in done.stderr
    assert "Run `timbre ingest`" in done.stderr and "Traceback" not in done.stderr


def test_reanalyse_rewrites_facts_on_a_clap_collection_and_keeps_vectors(
    library: Path, clap_env: dict[str, str]
) -> None:
    from timbre.embedding.embedder import describe_models
    from timbre.store import open_store

    settings = _settings(clap_env)
    # One point says what an older vocabulary made of its name: reanalyse must fix it.
    store = open_store(settings, describe_models(settings.models))
    try:
        kick_id = next(
            r.id for r in store.live().scroll() if r.payload["paths"][0].endswith("Kick 0.wav")
        )
        store.live().set_payloads({kick_id: {"instrument": "pad"}})
    finally:
        store.close()
    before = _points(settings)
    done = CliRunner().invoke(app, ["reanalyse", "--all"], env=clap_env)
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["points"] == len(before) and report["analysed"] == len(before)
    assert report["failed"] == 0 and report["changed"] >= 1
    after = _points(settings)
    assert set(after) == set(before)
    assert after[kick_id][0]["instrument"] == "kick"
    for point_id, (payload, vector) in after.items():
        np.testing.assert_array_equal(vector, before[point_id][1])
        assert payload["model"] == before[point_id][0]["model"]
        assert payload["model"]["family"] == "clap"
    exported = report["snapshot"]
    assert exported["collection"].startswith("timbre-clap-") and exported["count"] == len(after)
    manifest = settings.data_dir / "snapshots" / exported["snapshot"] / "manifest.json"
    assert json.loads(manifest.read_text())["model"]["family"] == "clap"
