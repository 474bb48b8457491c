"""``timbre mcp`` as a desktop assistant runs it: a subprocess on stdio, driven by the SDK's own
client, on its own (it opens the library, and lets the store go when idle, when another process
asks for it, or when a service starts) and beside a running service (it goes through the
service's HTTP API and never touches the store)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
from mcp import Client, StdioServerParameters

from ingest.synthetic import Library
from tests.support.live import live_service
from tests.support.mcp_helpers import TIMBRE, http_problem, session, structured, tool_problem
from timbre.cli.owner import SERVICE_FILE
from timbre.settings import load_settings

IDLE_S = 4.0
FILTER = {"kind": "one_shot", "pack": "Techno Essentials Vol 1"}


def timbre_mcp(data: Path, bundle: Path, library: Library) -> Client:
    """The SDK's client of a ``timbre mcp`` subprocess, configured as the README says."""
    env = {
        "TIMBRE_DATA_DIR": str(data),
        "TIMBRE_MODELS__BUNDLE": str(bundle),
        "TIMBRE_MODELS__THREADS": "2",
        "TIMBRE_API__LIBRARY_ROOTS": json.dumps([str(library.root)]),
        "TIMBRE_MCP__STORE_IDLE_S": str(IDLE_S),
        "TIMBRE_API__STORE_RETRY_S": "0.2",
        # the code under test, when it is not the installed one (a checkout on PYTHONPATH)
        **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
    }
    params = StdioServerParameters(command=str(TIMBRE), args=["mcp"], env=env)
    return Client(params, read_timeout_seconds=300)


def store_held(data: Path) -> bool:
    """Whether some process holds the embedded store's lock now (probed without asking)."""
    from timbre.store import embedded_dir
    from timbre.store.edge import OWNER_FILE

    with (embedded_dir(data) / OWNER_FILE).open("a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return False


def api_hits(url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = httpx.post(f"{url}/v1/search/text", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return list(response.json()["hits"])


def test_on_its_own_it_opens_the_library_and_lets_the_store_go(
    url: str, mcp_library: Library, mcp_indexed_dir: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    from timbre.embedding.embedder import describe_models
    from timbre.store import open_store

    data = tmp_path / "data"  # a copy: the module's service owns the original's store
    shutil.copytree(mcp_indexed_dir, data, ignore=shutil.ignore_patterns(SERVICE_FILE))
    settings = load_settings(
        data_dir=data,
        models={"bundle": tiny_bundle, "threads": 2},
        api={"library_roots": [str(mcp_library.root)]},
    )
    seen: dict[str, Any] = {}

    def take_the_store() -> Any:
        started = time.monotonic()
        store = open_store(settings, describe_models(settings.models))
        seen["waited_s"] = time.monotonic() - started
        return store

    async def body(client: Client) -> dict[str, Any]:
        out: dict[str, Any] = {}
        out["plain"] = await client.call_tool("search_samples", {"query": "kick", "top_k": 5})
        out["filtered"] = await client.call_tool(
            "search_samples", {"query": "kick", "top_k": 3, "filter": FILTER}
        )
        hit = structured(out["plain"])["hits"][0]["id"]
        out["added"] = await client.call_tool("add_to_collection", {"ids": [hit]})
        out["listed"] = await client.call_tool("list_collection", {})
        seen["held_after_call"] = store_held(data)
        await anyio.sleep(IDLE_S + 2.0)  # idle: the subprocess lets the embedded store go
        seen["held_when_idle"] = store_held(data)
        out["again"] = await client.call_tool(
            "search_samples", {"query": "kick", "top_k": 3, "filter": FILTER}
        )
        # Another process asks for the store while the subprocess holds it: it is let go.
        seen["held_when_asked"] = store_held(data)
        store = await anyio.to_thread.run_sync(take_the_store)
        try:
            out["locked"] = await client.call_tool(
                "search_samples", {"query": "kick", "top_k": 3, "filter": FILTER}
            )
            out["meanwhile"] = await client.call_tool(
                "search_samples", {"query": "kick", "top_k": 5}
            )
        finally:
            store.close()
        await anyio.sleep(0.5)  # past the subprocess's store retry interval
        out["reopened"] = await client.call_tool(
            "search_samples", {"query": "kick", "top_k": 3, "filter": FILTER}
        )
        # A service starts on the same data dir: its start asks for the store and gets it,
        # and the next calls go through it.
        seen["held_before_service"] = store_held(data)
        with contextlib.ExitStack() as stack:
            seen["service"] = await anyio.to_thread.run_sync(
                stack.enter_context, live_service(settings)
            )
            announced = data / SERVICE_FILE
            announced.write_text(json.dumps({"url": seen["service"], "pid": os.getpid()}))
            out["through_service"] = await client.call_tool(
                "search_samples", {"query": "kick", "top_k": 3, "filter": FILTER}
            )
            announced.unlink()
            await anyio.to_thread.run_sync(stack.close)
        out["empty"] = await client.call_tool("search_samples", {"query": ""})
        return out

    got = session(timbre_mcp(data, tiny_bundle, mcp_library), body)
    # The same hits as the service on the same library, with file:// URLs to play them.
    hits = structured(got["plain"])["hits"]
    expected = api_hits(url, {"query": "kick", "top_k": 5})
    assert [(h["id"], h["score"]) for h in hits] == [(e["id"], e["score"]) for e in expected]
    for hit, api in zip(hits, expected, strict=True):
        assert hit["audio_url"] == Path(api["path"]).as_uri()
        assert Path(api["path"]).is_file()
        # the paths to load it by, and where its facts came from, without a get_sample call
        for field in ("path", "paths", "instrument_source", "key_source", "bpm_source"):
            assert hit[field] == api[field], field
    filtered = api_hits(url, {"query": "kick", "top_k": 3, "filter": FILTER})
    assert [h["id"] for h in structured(got["filtered"])["hits"]] == [h["id"] for h in filtered]
    assert seen["held_after_call"] and not seen["held_when_idle"]  # let go once idle
    assert structured(got["again"])["hits"] == structured(got["filtered"])["hits"]
    assert structured(got["added"])["name"] == "favourites"
    assert hits[0]["id"] in [h["id"] for h in structured(got["listed"])["items"]]
    # Asked, it let go well within its promise; while another holds the store, a filtered
    # call says who (the API's 503), and an unfiltered one is still answered from the snapshot.
    assert seen["held_when_asked"]
    assert seen["waited_s"] < settings.mcp.store_yield_s
    status, detail = tool_problem(got["locked"])
    assert status == 503
    assert f"in use by process {os.getpid()}" in detail
    assert structured(got["meanwhile"])["hits"] == hits
    assert structured(got["reopened"])["hits"] == structured(got["filtered"])["hits"]
    assert seen["held_before_service"]
    through = structured(got["through_service"])["hits"]
    assert [h["id"] for h in through] == [h["id"] for h in filtered]
    assert all(h["audio_url"].startswith(seen["service"]) for h in through)
    response = httpx.post(f"{url}/v1/search/text", json={"query": ""})
    assert tool_problem(got["empty"]) == http_problem(response)


def test_beside_a_service_it_goes_through_the_service(
    url: str, mcp_library: Library, mcp_indexed_dir: Path, tiny_bundle: Path
) -> None:
    announced = mcp_indexed_dir / SERVICE_FILE
    # The service runs in this test process, so its pid is alive, as `timbre serve` writes it.
    announced.write_text(json.dumps({"url": url, "pid": os.getpid()}))

    async def body(client: Client) -> dict[str, Any]:
        found = await client.call_tool(
            "search_samples", {"query": "clap", "top_k": 4, "filter": FILTER}
        )
        first = structured(found)["hits"][0]["id"]
        return {
            "found": found,
            "sample": await client.call_tool("get_sample", {"id": first}),
            "palette": await client.call_tool(
                "build_palette",
                {"slots": [{"query": "kick", "top_k": 2}, {"query": "kick", "top_k": 2}]},
            ),
            "bad": await client.call_tool("search_samples", {"query": "k", "top_k": 10**6}),
            # What the assistant collects, the service (and its page) shows, and back.
            "added": await client.call_tool(
                "add_to_collection", {"ids": [first], "collection": "Beside the service"}
            ),
            "unknown_id": await client.call_tool(
                "add_to_collection", {"ids": ["nope"], "collection": "Beside the service"}
            ),
            "listed": await client.call_tool(
                "list_collection", {"collection": "Beside the service"}
            ),
            "all": await client.call_tool("list_collections", {}),
        }

    try:
        got = session(timbre_mcp(mcp_indexed_dir, tiny_bundle, mcp_library), body)
    finally:
        announced.unlink()
    # A filtered search needs the store, which the service owns: these came through it.
    hits = structured(got["found"])["hits"]
    expected = api_hits(url, {"query": "clap", "top_k": 4, "filter": FILTER})
    assert [h["id"] for h in hits] == [h["id"] for h in expected]
    assert all(h["audio_url"] == e["audio_url"] for h, e in zip(hits, expected, strict=True))
    # beside a service too, a hit carries the file's paths on this machine and its sources
    for field in ("path", "paths", "instrument_source", "key_source", "bpm_source"):
        assert [h[field] for h in hits] == [e[field] for e in expected], field
    assert all(Path(h["path"]).is_file() and h["path"] in h["paths"] for h in hits)
    assert all(h["audio_url"].startswith(url) for h in hits)
    item = httpx.get(f"{url}/v1/items/{hits[0]['id']}").json()
    assert structured(got["sample"]) == item
    slots = structured(got["palette"])["slots"]
    assert not {h["id"] for h in slots[0]["hits"]} & {h["id"] for h in slots[1]["hits"]}
    bad = httpx.post(f"{url}/v1/search/text", json={"query": "k", "top_k": 10**6})
    assert tool_problem(got["bad"]) == http_problem(bad)
    assert structured(got["added"])["count"] == 1
    assert got["unknown_id"].is_error
    served = httpx.get(f"{url}/v1/collections/Beside the service").json()
    assert [i["id"] for i in served["items"]] == [hits[0]["id"]]
    assert [h["id"] for h in structured(got["listed"])["items"]] == [hits[0]["id"]]
    names = {c["name"] for c in structured(got["all"])["collections"]}
    assert names == {c["name"] for c in httpx.get(f"{url}/v1/collections").json()["collections"]}
