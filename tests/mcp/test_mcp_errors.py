"""Failures a tool call meets besides bad arguments: a crash inside, a service that is gone or
answers garbage. Each is a tool error with a clear text; the server keeps answering."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from app.mcp.backends import Backend, HttpBackend
from app.mcp.server import UNEXPECTED, build_server
from tests.support.live import free_port
from tests.support.mcp_helpers import session, tool_problem


def server_over(backend: Any) -> Any:
    @contextmanager
    def backend_for(ctx: Any) -> Iterator[Backend]:
        yield backend

    return build_server(backend_for)


class Crashing:
    def search_text(self, body: Any) -> Any:
        raise RuntimeError("secret internals")


def test_a_crash_inside_a_tool_is_a_tool_error_that_reveals_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body(client: Client) -> list[Any]:
        crashed = await client.call_tool("search_samples", {"query": "kick"})
        with pytest.raises(MCPError, match="unknown tool"):
            await client.call_tool("no_such_tool", {})
        return [crashed, await client.list_tools()]

    crashed, tools = session(Client(server_over(Crashing())), body)
    assert tool_problem(crashed) == (500, UNEXPECTED)
    assert "secret" not in crashed.content[0].text
    assert "secret internals" in caplog.text  # the trace goes to the log
    assert len(tools.tools) == 9  # still answering


def test_a_service_that_is_gone_or_answers_garbage_is_a_clear_tool_error() -> None:
    gone = HttpBackend(f"http://127.0.0.1:{free_port()}", api_key=None, timeout_s=5)
    # A proxy in front of the service answering an HTML error page instead of a problem.
    proxy = HttpBackend(
        "http://timbre.internal",
        api_key=None,
        timeout_s=5,
        transport=httpx.MockTransport(lambda r: httpx.Response(502, text="<html>Bad gateway")),
    )

    async def call(client: Client) -> Any:
        return await client.call_tool("get_sample", {"id": "00000000-0000-5000-8000-000000000000"})

    status, text = tool_problem(session(Client(server_over(gone)), call))
    assert status == 503 and text.startswith(f"the Timbre service at {gone.url} could not be")
    status, text = tool_problem(session(Client(server_over(proxy)), call))
    assert (status, text) == (502, "the Timbre service at http://timbre.internal answered 502")


def test_a_collection_from_the_service_leaves_out_samples_no_longer_indexed() -> None:
    # The page's collections route (its reply shape: items no longer indexed are marked
    # ``missing``, without an audio URL), as the local backend leaves such items out.
    kept = {
        "id": "00000000-0000-5000-8000-000000000001",
        "path": "/lib/Kick_01.wav",
        "audio_url": "http://timbre.internal/v1/items/00000000-0000-5000-8000-000000000001/audio",
        "added_at": "2026-12-01T10:00:00+00:00",
    }
    gone = {"id": "00000000-0000-5000-8000-000000000002", "audio_url": None, "missing": True}
    reply = {"name": "favourites", "count": 2, "created_at": "t0", "updated_at": "t1"}
    service = HttpBackend(
        "http://timbre.internal",
        api_key=None,
        timeout_s=5,
        transport=httpx.MockTransport(
            lambda r: httpx.Response(200, json={**reply, "items": [kept, gone]})
        ),
    )

    async def call(client: Client) -> Any:
        return await client.call_tool("list_collection", {})

    result = session(Client(server_over(service)), call)
    assert not result.is_error, result.content[0].text
    items = result.structured_content["items"]
    assert [(i["id"], i["name"], i["audio_url"]) for i in items] == [
        (kept["id"], "Kick_01.wav", kept["audio_url"])
    ]
