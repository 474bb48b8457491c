"""``build_kit`` as an assistant calls it, through the MCP SDK's client: over ``/mcp`` (the
service's own backend) and through a service's HTTP API (the backend ``timbre mcp`` uses
beside a running service), on the shared synthetic library (4 packs, each with a kick, a
snare, a hat and a clap one-shot and one drum loop)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from mcp import Client

from app.mcp.backends import Backend, HttpBackend
from app.mcp.server import build_server
from tests.support.mcp_helpers import over_http, session, structured, tool_problem


def through_http_api(url: str) -> Client:
    """An MCP server whose backend is the service's HTTP API."""
    backend = HttpBackend(url, api_key=None, timeout_s=60)

    @contextmanager
    def backend_for(ctx: Any) -> Iterator[Backend]:
        yield backend

    return Client(build_server(backend_for))


def build(client: Client, arguments: dict[str, Any]) -> Any:
    async def body(c: Client) -> Any:
        return await c.call_tool("build_kit", arguments)

    return session(client, body)


def sample_ids(kit: dict[str, Any]) -> list[str | None]:
    return [p["sample"]["id"] if p["sample"] else None for p in kit["pads"]]


def test_a_kit_for_a_project_has_distinct_samples_and_says_how_each_fits(url: str) -> None:
    arguments = {"pads": 8, "context": {"bpm": 124, "key": "Am"}}
    kit = structured(build(over_http(f"{url}/mcp"), arguments))
    assert kit["name"] is None  # not saved
    assert kit["context"]["key"] == "Am" and kit["context"]["bpm"] == 124
    pads = kit["pads"]
    assert [p["index"] for p in pads] == list(range(1, 9))
    assert [p["midi_note"] for p in pads] == list(range(36, 44))
    assert [p["slot"] for p in pads][:3] == ["kick", "snare", "closed hat"]
    ids = sample_ids(kit)
    assert None not in ids and len(set(ids)) == 8
    for pad in pads:
        assert pad["sample"]["kind"] == "one_shot" and pad["sample"]["path"]
        assert pad["fit"]["fits"] is True  # one-shot drums: no tempo, no key to clash
    assert pads[0]["sample"]["instrument"] == "kick"
    # the HTTP API fills the same kit
    preview = httpx.post(f"{url}/v1/search/kit", json=arguments, timeout=60)
    assert preview.status_code == 200, preview.text
    assert [p["id"] for p in preview.json()["pads"]] == ids


def test_a_named_kit_is_saved_through_either_door(url: str) -> None:
    slots = ["kick", "snare", "hat", "clap"]
    names = [f"mcp kit {uuid.uuid4().hex[:6]}", f"http kit {uuid.uuid4().hex[:6]}"]
    doors = [over_http(f"{url}/mcp"), through_http_api(url)]
    kits = []
    for name, door in zip(names, doors, strict=True):
        kit = structured(build(door, {"pads": 8, "slots": slots, "name": name}))
        assert kit["name"] == name and kit["context"] is None
        assert all(p["fit"] is None for p in kit["pads"])
        stored = httpx.get(f"{url}/v1/kits/{name}", timeout=30).json()
        assert [p["id"] for p in stored["pads"]] == sample_ids(kit)
        kits.append(kit)
    assert sample_ids(kits[0]) == sample_ids(kits[1])  # the same kit, whichever door
    for door in (over_http(f"{url}/mcp"), through_http_api(url)):
        status, text = tool_problem(build(door, {"pads": 8, "name": names[0].upper()}))
        assert status == 409 and "already exists" in text


@pytest.mark.parametrize(
    "arguments",
    [
        {"pads": 10000},
        {"pads": 12},
        {"pads": 8, "slots": ["kick"] * 9},
        {"pads": 8, "slots": [" "]},
        {"pads": 8, "slots": ["kick\x07"]},
        {"pads": 8, "context": {"bpm": 0}},
        {"pads": 8, "context": {"bpm": -1, "key": "Am"}},
        {"pads": 8, "context": {"key": "not a key"}},
        {"pads": 8, "context": {}},
        {"pads": 8, "name": "a/b"},
        {"pads": 8, "colour": "red"},
    ],
)
def test_bad_arguments_are_a_422_tool_error(url: str, arguments: dict[str, Any]) -> None:
    status, text = tool_problem(build(over_http(f"{url}/mcp"), arguments))
    assert status == 422 and text
