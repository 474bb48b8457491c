"""DNS rebinding and cross-site writes: a Host the service does not answer to is refused on
every route (the API, audio, collection writes, ingest, the page, /mcp), and a browser write
from a foreign Origin is refused even under an allowed Host."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.routing import Route

from ingest.synthetic import Library
from tests.support.api_fixtures import ok, problem
from timbre.settings import ApiSettings

EVIL = {"Host": "evil.example", "Origin": "http://evil.example"}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


def tool_call(query: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "search_samples", "arguments": {"query": query, "top_k": 2}},
    }


def requests(item_id: str, library: Library) -> list[tuple[str, str, Any]]:
    return [
        ("GET", "/healthz", None),
        ("GET", "/", None),
        ("GET", f"/v1/items/{item_id}", None),
        ("GET", f"/v1/items/{item_id}/audio", None),
        ("POST", "/v1/search/text", {"query": "kick"}),
        ("POST", "/v1/collections/rebound/items", {"ids": [item_id]}),
        ("POST", "/v1/ingest", {"paths": [str(library.root)], "dry_run": True}),
        ("POST", "/mcp", tool_call("kick")),
    ]


def an_id(client: TestClient) -> str:
    return ok(client.post("/v1/search/text", json={"query": "kick", "top_k": 1}))["hits"][0]["id"]


def test_a_rebinding_host_is_refused_on_every_route(client: TestClient, library: Library) -> None:
    item_id = an_id(client)
    for method, url, body in requests(item_id, library):
        response = client.request(method, url, json=body, headers={**EVIL, **MCP_HEADERS})
        detail = problem(response, 421, "unknown_host")["detail"]
        assert "evil.example" in detail and "api.allowed_hosts" in detail, url
    assert client.get("/v1/collections/rebound").status_code == 404  # nothing was written
    assert client.get("/healthz", headers={"Host": "evil.example:8000"}).status_code == 421


def test_loopback_names_and_the_allowed_hosts_keep_working(client: TestClient) -> None:
    for host in ("testserver", "localhost:8000", "127.0.0.1", "[::1]:8000", "LOCALHOST"):
        assert client.get("/healthz", headers={"Host": host}).status_code == 200, host
    reply = client.post(
        "/mcp", json=tool_call("kick"), headers={"Host": "localhost:8000", **MCP_HEADERS}
    )
    assert reply.status_code == 200, reply.text
    hits = reply.json()["result"]["structuredContent"]["hits"]
    assert hits and all(h["audio_url"].startswith("http://localhost:8000/") for h in hits)


def test_a_foreign_origin_may_not_write_even_to_an_allowed_host(
    client: TestClient, library: Library
) -> None:
    item_id = an_id(client)
    for method, url, body in requests(item_id, library):
        response = client.request(
            method, url, json=body, headers={"Origin": "http://evil.example", **MCP_HEADERS}
        )
        if method == "GET":
            assert response.status_code == 200, url  # reads: the browser's CORS rules apply
        else:
            assert problem(response, 403, "forbidden_origin")["detail"], url
    assert client.get("/v1/collections/rebound").status_code == 404
    # The service's own page writes with its own origin.
    own = client.post(
        "/v1/collections", json={"name": "own page"}, headers={"Origin": "http://testserver"}
    )
    assert own.status_code == 201, own.text
    assert (
        client.post(
            "/v1/collections", json={"name": "sandboxed"}, headers={"Origin": "null"}
        ).status_code
        == 403
    )


def test_the_mcp_sdk_checks_the_host_itself_too(client: TestClient) -> None:
    """Behind the app's guard, /mcp keeps the SDK's own DNS-rebinding protection, with the
    same names: mounted without the guard, it still refuses evil.example."""
    from app.mcp.http import McpEndpoint

    state = client.app.state  # type: ignore[attr-defined]
    api: ApiSettings = state.api
    endpoint = McpEndpoint(state.service, api, state.collections.db)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with endpoint.run():
            yield

    bare = Starlette(routes=[Route("/mcp", endpoint=endpoint)], lifespan=lifespan)
    with TestClient(bare) as raw:
        refused = raw.post(
            "/mcp", json=tool_call("kick"), headers={"Host": "evil.example", **MCP_HEADERS}
        )
        assert refused.status_code == 421
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        fine = raw.post("/mcp", json=ping, headers={"Host": "localhost:8000", **MCP_HEADERS})
        assert fine.status_code == 200, fine.text
