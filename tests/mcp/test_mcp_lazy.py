"""``/mcp`` is built on its first request: the SDK stays out of start-up, requests wait for it.

The real endpoint behind it is driven by tests/mcp/test_mcp.py (every request there passes through
this placeholder); here, what start-up imports and what a failed build answers.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
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


class _Endpoint:
    """Stands in for app.mcp.http.McpEndpoint: the ASGI app and session manager it exposes."""

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        yield

    async def __call__(self, scope: object, receive: object, send: Any) -> None:
        await PlainTextResponse("endpoint")(scope, receive, send)  # type: ignore[arg-type]


def test_it_is_built_once_on_the_first_request_and_not_before() -> None:
    lazy = LazyMcp(_Endpoint)  # type: ignore[arg-type]
    with TestClient(_app(lazy)) as client:
        assert client.get("/other").status_code == 404
        assert lazy.builds == 0 and not lazy.ready  # started, running, nothing imported
        with ThreadPoolExecutor(4) as pool:
            replies = list(pool.map(lambda _: client.post(PATH, json={}), range(4)))
        assert [r.text for r in replies] == ["endpoint"] * 4
        assert lazy.builds == 1 and lazy.ready
    assert lazy.builds == 1 and not lazy.ready  # stopped with the app
