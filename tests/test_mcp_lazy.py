"""``/mcp`` is built after the app starts: the SDK stays out of start-up, requests wait for it.

The real endpoint behind it is driven by tests/test_mcp.py (every request there passes through
this placeholder); here, what start-up imports and what a failed build answers.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from app.mcp.lazy import PATH, LazyMcp


def test_the_app_module_does_not_import_the_mcp_sdk() -> None:
    code = "import sys, app.main; print(sorted(m for m in sys.modules if m.split('.')[0] == 'mcp'))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


def _app(lazy: LazyMcp) -> Starlette:
    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with lazy.running():
            yield

    return Starlette(routes=[Route(PATH, endpoint=lazy)], lifespan=lifespan)


def test_a_failed_build_answers_503_naming_the_cause() -> None:
    def broken() -> object:
        raise ImportError("no module named 'mcp'")

    lazy = LazyMcp(broken)  # type: ignore[arg-type]
    with TestClient(_app(lazy)) as client:
        response = client.post(PATH, json={})
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "unavailable"
    assert "ImportError: no module named 'mcp'" in body["detail"]
    assert not lazy.ready


def test_without_a_running_app_it_answers_503_at_once() -> None:
    lazy = LazyMcp(lambda: None)  # type: ignore[arg-type, return-value]
    client = TestClient(_app(lazy))  # no `with`: the lifespan never runs
    response = client.post(PATH, json={})
    assert response.status_code == 503
    assert "not running" in response.json()["detail"]
