"""Helpers for the MCP tests: a live service on a loopback port, and MCP calls made with the
SDK's own client (over streamable HTTP, over stdio, or in-process)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import httpx2
from mcp import Client

T = TypeVar("T")

TIMBRE = Path(sys.executable).with_name("timbre")
"""The ``timbre`` command of this environment, as an assistant's config names it."""


def over_http(url: str, headers: dict[str, str] | None = None) -> Client:
    """The SDK's client of the streamable HTTP endpoint at ``url`` (e.g. ``.../mcp``)."""
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers=headers or {}, timeout=60)
    return Client(streamable_http_client(url, http_client=http))


def session(client: Client, body: Callable[[Client], Awaitable[T]]) -> T:
    """Run ``body`` with ``client`` connected (the tests are synchronous)."""

    async def run() -> T:
        async with client:
            return await body(client)

    return anyio.run(run)


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def http_problem(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    return response.status_code, str(body["detail"])


def tool_problem(result: Any) -> tuple[int, str]:
    assert result.is_error
    return int(result.meta["timbre/problem"]["status"]), str(result.content[0].text)
