"""HEAD answers like GET, without the body, on every GET route (uptime checkers use HEAD)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.api_fixtures import ok

STABLE = ["/healthz", "/", "/static/app.js", "/v1/items/{id}", "/v1/items/{id}/audio"]
"""Routes whose GET body is the same on every call: HEAD must announce its exact length."""


def test_head_answers_like_get_on_every_get_route(client: TestClient) -> None:
    item_id = ok(client.post("/v1/search/text", json={"query": "kick", "top_k": 1}))["hits"][0][
        "id"
    ]
    documented = client.get("/openapi.json").json()["paths"]
    paths = {
        template.replace("{item_id}", item_id)
        for template, operations in documented.items()
        if "get" in operations and "{" not in template.replace("{item_id}", "")
    }
    paths |= {p.replace("{id}", item_id) for p in STABLE}
    assert {"/healthz", "/readyz", "/v1/stats", "/metrics"} <= paths
    for path in sorted(paths):
        get, head = client.get(path), client.head(path)
        assert head.status_code == get.status_code, (path, head.text)
        assert head.content == b"", path
        assert head.headers.get("content-type") == get.headers.get("content-type"), path
    for path in (p.replace("{id}", item_id) for p in STABLE):
        get, head = client.get(path), client.head(path)
        assert head.headers["content-length"] == str(len(get.content)), path
    missing = client.head("/v1/items/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.content == b""
