"""Fixtures of the HTTP API tests: one indexed library per session, an app per module.

Registered as a plugin in ``tests/conftest.py`` so every API test module shares the one ingest
of the library (the slow part) and opens its own app over it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ingest.synthetic import Library, make_library
from tests.support.ingest_helpers import ingest, job_settings
from timbre.cli.wiring import build_app
from timbre.settings import Settings, load_settings


@pytest.fixture(scope="session")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    return make_library(
        tmp_path_factory.mktemp("lib") / "Samples",
        one_shots_per_pack=9,
        loops_per_pack=2,
        loop_bars=(1,),
    )


@pytest.fixture(scope="session")
def indexed_dir(
    library: Library, tiny_bundle: Path, audio_embedder, tmp_path_factory: pytest.TempPathFactory
) -> Path:  # type: ignore[no-untyped-def]
    data = tmp_path_factory.mktemp("data")
    ingest(job_settings(tiny_bundle, data), audio_embedder, [library.root])
    return data


def api_settings(bundle: Path, data: Path, library: Library, **api: Any) -> Settings:
    qdrant = api.pop("qdrant", {})
    return load_settings(
        data_dir=data,
        models={"bundle": bundle, "threads": 2},
        api={"library_roots": [str(library.root)], "snapshot_poll_s": 0.2, **api},
        qdrant=qdrant,
    )


READY_WITHIN_S = 180.0
"""How long a test app may take to load its models: generous, as CI machines can be busy."""


def until_ready(client: TestClient, timeout_s: float = READY_WITHIN_S) -> None:
    """Wait until the app answers ``/readyz`` with 200; fail the test with its last reply."""
    deadline = time.monotonic() + timeout_s
    while (reply := client.get("/readyz")).status_code != 200:
        if time.monotonic() > deadline:
            pytest.fail(f"the app was not ready after {timeout_s:.0f} s: {reply.text}")
        time.sleep(0.1)


@contextmanager
def opened(settings: Settings, *, wait_ready: bool = True) -> Iterator[TestClient]:
    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        if wait_ready:
            until_ready(client)
        yield client


@pytest.fixture(scope="module")
def client(library: Library, indexed_dir: Path, tiny_bundle: Path) -> Iterator[TestClient]:
    with opened(api_settings(tiny_bundle, indexed_dir, library)) as c:
        yield c


def copy_of(data: Path, tmp_path: Path) -> Path:
    """A private copy of the indexed data dir (the module's client owns the original store)."""
    target = tmp_path / "data"
    shutil.copytree(data, target, ignore=shutil.ignore_patterns("service.json"))
    return target


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code and body["status"] == status and body["detail"]
    assert "Traceback" not in response.text
    return body


def first_hit(client: Any, query: str, **filter: Any) -> dict[str, Any]:
    """The best text-search hit for ``query`` under ``filter`` (e.g. ``kind="loop"``)."""
    body = {"query": query, "filter": filter or None, "top_k": 1}
    hit: dict[str, Any] = ok(client.post("/v1/search/text", json=body))["hits"][0]
    return hit
