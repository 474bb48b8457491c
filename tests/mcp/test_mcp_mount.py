"""``/mcp`` is mounted at start-up: it answers from the app's first request, and only while the
app runs (the MCP protocol itself is driven by tests/mcp/test_mcp.py)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from app.main import create_app
from tests.support.api_fixtures import problem
from timbre.search import SearchService
from timbre.settings import load_settings

MCP = {"Accept": "application/json, text/event-stream", "Host": "localhost"}
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


class _Service:
    """The little of a SearchService that building the app touches."""

    on_embed = None
    disk = None

    class limits:  # noqa: N801
        facet_max_limit = 100


def test_mcp_answers_while_the_app_runs_and_503_otherwise(tmp_path: Path) -> None:
    api = load_settings(data_dir=tmp_path).api
    service: SearchService = _Service()  # type: ignore[assignment]
    app = create_app(service, api, collections=object())  # type: ignore[arg-type]
    stopped = TestClient(app, raise_server_exceptions=False)  # no `with`: no lifespan
    found = problem(stopped.post("/mcp", json=PING, headers=MCP), 503, "unavailable")
    assert "runs only while the app does" in found["detail"]
    with TestClient(app) as client:
        for _ in range(2):  # the first request already finds it built
            reply = client.post("/mcp", json=PING, headers=MCP)
            assert reply.status_code == 200 and reply.json()["id"] == 1, reply.text
