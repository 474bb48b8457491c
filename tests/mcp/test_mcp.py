"""The MCP server over streamable HTTP at ``/mcp``, driven by the SDK's own client against a
live service: the tools and their schemas, every tool with good and bad arguments, results
equal to the HTTP API's, palette distinctness, resources, the prompt, and the key rules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from app.schemas import BatchItemIn, BatchSearchIn, FilterIn, HitOut, HybridSearchIn, TextSearchIn
from app.schemas.mcp import SampleBrief
from ingest.synthetic import Library
from tests.support.live import live_service
from tests.support.mcp_helpers import (
    http_problem,
    over_http,
    session,
    structured,
    tool_problem,
)
from timbre.settings import Settings, load_settings

KEY = "s3cret-key"


@pytest.fixture(scope="module")
def library(mcp_library: Library) -> Library:
    return mcp_library


@pytest.fixture(scope="module")
def indexed_dir(mcp_indexed_dir: Path) -> Path:
    return mcp_indexed_dir


def service_settings(bundle: Path, data: Path, library: Library, **api: Any) -> Settings:
    return load_settings(
        data_dir=data,
        models={"bundle": bundle, "threads": 2},
        api={"library_roots": [str(library.root)], **api},
    )


@pytest.fixture(scope="module")
def url(library: Library, indexed_dir: Path, tiny_bundle: Path) -> Iterator[str]:
    with live_service(service_settings(tiny_bundle, indexed_dir, library)) as base:
        yield base


def post(url: str, route: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(f"{url}{route}", json=body, headers=headers, timeout=60)


def same_hits(briefs: list[dict[str, Any]], hits: list[dict[str, Any]]) -> None:
    """The tool's hits are the API's, in order, field for field."""
    assert [b["id"] for b in briefs] == [h["id"] for h in hits]
    for brief, hit in zip(briefs, hits, strict=True):
        assert brief["name"] == Path(hit["path"]).name
        for field in SampleBrief.model_fields.keys() - {"name"}:
            assert brief[field] == hit.get(field), field


def test_tools_advertise_the_http_models_schemas(url: str) -> None:
    async def body(client: Client) -> Any:
        return (await client.list_tools()).tools

    tools = {t.name: t for t in session(over_http(f"{url}/mcp"), body)}
    assert set(tools) == {
        "search_samples",
        "similar_samples",
        "build_palette",
        "get_sample",
        "library_overview",
        "list_collections",
        "list_collection",
        "add_to_collection",
        "build_kit",
    }
    # The HTTP request model itself, and its filter, slot and hit models, byte for byte.
    assert tools["search_samples"].input_schema == TextSearchIn.model_json_schema()
    assert tools["get_sample"].output_schema == HitOut.model_json_schema()
    palette = tools["build_palette"].input_schema
    filter_schema = {k: v for k, v in FilterIn.model_json_schema().items() if k != "$defs"}
    assert palette["$defs"]["FilterIn"] == filter_schema
    assert (
        palette["$defs"]["BatchItemIn"]["properties"]
        == (BatchItemIn.model_json_schema()["properties"])
    )
    similar = tools["similar_samples"].input_schema["properties"]
    hybrid = HybridSearchIn.model_json_schema()["properties"]
    for field in ("top_k", "offset", "alpha", "filter"):
        assert similar[field] == hybrid[field], field
    rules = {k: v for k, v in hybrid["query"].items() if k != "title"}
    assert similar["query"]["anyOf"][0] == rules  # the same text rules
    batch = BatchSearchIn.model_json_schema()["properties"]["distinct"]
    assert palette["properties"]["distinct"] == {**batch, "default": True}
    brief = tools["search_samples"].output_schema["$defs"]["SampleBrief"]["properties"]
    hit = HitOut.model_json_schema()["properties"]
    for field, schema in brief.items():
        if field != "name":
            assert schema == hit[field], field
    writes = {n for n, t in tools.items() if not t.annotations.read_only_hint}
    assert writes == {"add_to_collection", "build_kit"}  # build_kit saves a named kit


def test_search_tools_answer_what_the_http_api_answers(url: str) -> None:
    filt = {"kind": "one_shot", "bpm": "0-300"}

    async def body(client: Client) -> dict[str, Any]:
        out: dict[str, Any] = {}
        out["text"] = await client.call_tool(
            "search_samples", {"query": "punchy kick", "top_k": 5, "filter": filt}
        )
        out["plain"] = await client.call_tool("search_samples", {"query": "warm pad"})
        first = structured(out["plain"])["hits"][0]["id"]
        out["first"] = first
        out["similar"] = await client.call_tool("similar_samples", {"id": first, "top_k": 4})
        out["hybrid"] = await client.call_tool(
            "similar_samples", {"id": first, "query": "darker", "alpha": 0.3, "top_k": 4}
        )
        out["sample"] = await client.call_tool("get_sample", {"id": first})
        return out

    got = session(over_http(f"{url}/mcp"), body)
    api = post(url, "/v1/search/text", {"query": "punchy kick", "top_k": 5, "filter": filt})
    same_hits(structured(got["text"])["hits"], api.json()["hits"])
    api = post(url, "/v1/search/text", {"query": "warm pad"})
    same_hits(structured(got["plain"])["hits"], api.json()["hits"])
    api = post(url, "/v1/search/audio", {"id": got["first"], "top_k": 4})
    same_hits(structured(got["similar"])["hits"], api.json()["hits"])
    hybrid = {"id": got["first"], "query": "darker", "alpha": 0.3, "top_k": 4}
    api = post(url, "/v1/search/hybrid", hybrid)
    same_hits(structured(got["hybrid"])["hits"], api.json()["hits"])
    # get_sample is the API's item, every field, its audio URL playable.
    item = httpx.get(f"{url}/v1/items/{got['first']}").json()
    assert structured(got["sample"]) == item
    assert httpx.get(item["audio_url"]).status_code == 200
    assert got["text"].content[0].text.startswith('{"hits":')  # the JSON, for text-only clients


def test_library_overview_is_the_facets_route(url: str) -> None:
    from app.mcp.tools import OVERVIEW_FIELDS

    async def body(client: Client) -> list[Any]:
        return [
            await client.call_tool("library_overview", {}),
            await client.call_tool("library_overview", {"filter": {"kind": "loop"}}),
        ]

    everything, loops = session(over_http(f"{url}/mcp"), body)
    fields = [("field", f) for f in OVERVIEW_FIELDS]
    assert structured(everything) == httpx.get(f"{url}/v1/facets", params=fields).json()
    only = [*fields, ("filter", json.dumps({"kind": "loop"}))]
    assert structured(loops) == httpx.get(f"{url}/v1/facets", params=only).json()
    assert structured(loops)["total"] == 4  # one loop per pack
    assert {v["value"] for v in structured(everything)["facets"]["pack"]} >= {"Deep House Grooves"}


def test_a_palette_fills_every_slot_with_distinct_samples_inside_its_context(url: str) -> None:
    slots = [{"slot": s, "query": "kick drum", "top_k": 3} for s in ("a", "b", "c")]
    pack = "Deep House Grooves"
    context = {"pack": pack, "kind": "one_shot"}

    async def body(client: Client) -> dict[str, Any]:
        return {
            "distinct": await client.call_tool("build_palette", {"slots": slots}),
            "same": await client.call_tool("build_palette", {"slots": slots, "distinct": False}),
            "context": await client.call_tool(
                "build_palette",
                {
                    "slots": [
                        {"slot": "kick", "query": "kick", "filter": {"instrument": "kick"}},
                        {"slot": "any", "query": "drum", "top_k": 50},
                    ],
                    "context": context,
                },
            ),
            "clash": await client.call_tool(
                "build_palette",
                {
                    "slots": [{"query": "kick", "filter": {"pack": "Lofi Hip Hop Kit"}}],
                    "context": context,
                },
            ),
        }

    got = session(over_http(f"{url}/mcp"), body)
    ids = [[h["id"] for h in s["hits"]] for s in structured(got["distinct"])["slots"]]
    assert [len(i) for i in ids] == [3, 3, 3]
    assert len({i for slot in ids for i in slot}) == 9  # no sample in two slots
    again = [[h["id"] for h in s["hits"]] for s in structured(got["same"])["slots"]]
    assert again[0] == again[1] == again[2] == ids[0]
    # The API's batch with the same slots and context gives the same palette.
    api = post(url, "/v1/search/batch", {"queries": slots, "distinct": True}).json()
    assert [[h["id"] for h in r["hits"]] for r in api["results"]] == ids
    kick, anything = structured(got["context"])["slots"]
    assert [s["slot"] for s in (kick, anything)] == ["kick", "any"]
    assert kick["hits"] and anything["hits"]
    assert all(h["pack"] == pack and h["kind"] == "one_shot" for h in anything["hits"])
    assert all(h["instrument"] == "kick" and h["pack"] == pack for h in kick["hits"])
    # The context is ANDed with a slot's own filter, never replaced by it.
    assert structured(got["clash"])["slots"][0]["hits"] == []


NO_ID = "00000000-0000-5000-8000-000000000000"  # a well-formed id nothing has
TEXT, AUDIO, HYBRID = "/v1/search/text", "/v1/search/audio", "/v1/search/hybrid"
BAD_CALLS = [
    # tool, the API route that takes the same arguments, the arguments
    ("search_samples", TEXT, {"query": ""}),
    ("search_samples", TEXT, {"query": "   "}),
    ("search_samples", TEXT, {"query": "k", "top_k": 0}),
    ("search_samples", TEXT, {"query": "k", "top_k": 10**6}),
    ("search_samples", TEXT, {"query": "k", "filter": {"bpm": "fast"}}),
    ("search_samples", TEXT, {"query": "k", "filter": {"key": "H#"}}),
    ("search_samples", TEXT, {"query": "k", "filter": {"colour": "red"}}),
    ("search_samples", TEXT, {"query": "k", "topk": 3}),
    ("similar_samples", AUDIO, {"id": "not-an-id"}),
    ("similar_samples", AUDIO, {"id": NO_ID}),
    ("similar_samples", HYBRID, {"id": NO_ID, "query": "x", "alpha": 2}),
    ("similar_samples", HYBRID, {"id": NO_ID, "query": "   "}),
    ("similar_samples", HYBRID, {"id": NO_ID, "query": "x", "alpha": True}),
    ("search_samples", TEXT, {"query": "k", "top_k": True}),
]


def test_bad_arguments_are_tool_errors_with_the_http_apis_messages(url: str) -> None:
    async def body(client: Client) -> list[Any]:
        results = [await client.call_tool(tool, args) for tool, _, args in BAD_CALLS]
        results.append(await client.call_tool("get_sample", {"id": "nope"}))
        results.append(await client.call_tool("build_palette", {"slots": []}))
        results.append(await client.call_tool("build_palette", {"slots": [{"query": ""}]}))
        results.append(
            await client.call_tool("build_palette", {"slots": [{"query": "k"}], "distinct": "yes"})
        )
        # ...and the server still answers.
        results.append(await client.call_tool("search_samples", {"query": "kick", "top_k": 1}))
        return results

    *bad, missing, no_slots, empty_slot, not_bool, fine = session(over_http(f"{url}/mcp"), body)
    for (tool, route, args), result in zip(BAD_CALLS, bad, strict=True):
        assert tool_problem(result) == http_problem(post(url, route, args)), (tool, args)
    assert tool_problem(missing) == http_problem(httpx.get(f"{url}/v1/items/nope"))
    assert tool_problem(no_slots) == (
        422,
        "slots: List should have at least 1 item after validation, not 0",
    )
    queries = post(url, "/v1/search/batch", {"queries": [{"query": ""}]})
    assert tool_problem(empty_slot)[1] == http_problem(queries)[1].replace("queries.", "slots.")
    batch = post(url, "/v1/search/batch", {"queries": [{"query": "k"}], "distinct": "yes"})
    assert tool_problem(not_bool) == http_problem(batch)
    assert len(structured(fine)["hits"]) == 1


def test_collections_resources_and_the_prompt(url: str) -> None:
    async def body(client: Client) -> dict[str, Any]:
        found = structured(await client.call_tool("search_samples", {"query": "snare", "top_k": 2}))
        ids = [h["id"] for h in found["hits"]]
        out: dict[str, Any] = {"ids": ids}
        out["added"] = await client.call_tool("add_to_collection", {"ids": ids})
        out["named"] = await client.call_tool(
            "add_to_collection", {"ids": ids[:1], "collection": "Techno kicks"}
        )
        out["bad_id"] = await client.call_tool("add_to_collection", {"ids": ["x"]})
        out["favourites"] = await client.call_tool("list_collection", {})
        out["all"] = await client.call_tool("list_collections", {})
        out["unknown"] = await client.call_tool("list_collection", {"collection": "nope"})
        out["resources"] = [str(r.uri) for r in (await client.list_resources()).resources]
        out["templates"] = [
            t.uri_template for t in (await client.list_resource_templates()).resource_templates
        ]
        out["sample"] = (await client.read_resource(f"timbre://samples/{ids[0]}")).contents[0].text
        out["collection"] = (
            (await client.read_resource("timbre://collections/Techno%20kicks")).contents[0].text
        )
        try:
            await client.read_resource(f"timbre://samples/{NO_ID}")
        except MCPError as exc:
            out["missing"] = exc.error.message
        out["prompts"] = [p.name for p in (await client.list_prompts()).prompts]
        out["prompt"] = await client.get_prompt("build_palette", {"brief": "warm techno, 124 BPM"})
        return out

    got = session(over_http(f"{url}/mcp"), body)
    ids = got["ids"]
    assert structured(got["added"])["name"] == "favourites"
    assert structured(got["named"])["count"] == 1
    assert got["bad_id"].is_error
    favourites = structured(got["favourites"])
    assert [h["id"] for h in favourites["items"]][-2:] == ids
    assert {c["name"] for c in structured(got["all"])["collections"]} >= {
        "favourites",
        "Techno kicks",
    }
    assert tool_problem(got["unknown"]) == (404, "no collection named 'nope'")
    assert "timbre://collections" in got["resources"]
    assert "timbre://collections/Techno%20kicks" in got["resources"]
    assert set(got["templates"]) == {"timbre://samples/{id}", "timbre://collections/{name}"}
    assert json.loads(got["sample"]) == httpx.get(f"{url}/v1/items/{ids[0]}").json()
    assert [h["id"] for h in json.loads(got["collection"])["items"]] == ids[:1]
    assert got["missing"].startswith("no indexed item")
    assert got["prompts"] == ["build_palette"]
    text = got["prompt"].messages[0].content.text
    assert "warm techno, 124 BPM" in text
    for step in ("library_overview", "build_palette", "similar_samples", "add_to_collection"):
        assert step in text
    # each slot its own instrument and kind; a context tempo that spares one-shots; empty
    # slots explained; the path to load a pick
    for advice in ("its instrument", "kind (one_shot", "one-shots have no tempo", "'empty'"):
        assert advice in text, advice
    assert "path" in text


def test_mcp_follows_the_api_key_rules(
    library: Library, indexed_dir: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(indexed_dir, data)

    async def calls(client: Client) -> list[Any]:
        found = structured(await client.call_tool("search_samples", {"query": "kick", "top_k": 1}))
        ids = [found["hits"][0]["id"]]
        return [await client.call_tool("add_to_collection", {"ids": ids, "collection": "keyed"})]

    # A key is set, reads are open: search without it, but writing needs it.
    with live_service(service_settings(tiny_bundle, data, library, api_key=KEY)) as base:
        (refused,) = session(over_http(f"{base}/mcp"), calls)
        api = post(base, "/v1/ingest", {"paths": [str(library.root)]})  # a write, keyless
        assert tool_problem(refused) == http_problem(api) and api.status_code == 401
        (allowed,) = session(over_http(f"{base}/mcp", {"X-API-Key": KEY}), calls)
        assert structured(allowed)["count"] == 1
        foreign = httpx.post(f"{base}/mcp", json={}, headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403
    # Reads need the key too: /mcp answers 401 without it, like the routes.
    with live_service(
        service_settings(tiny_bundle, data, library, api_key=KEY, require_key_for_reads=True)
    ) as base:
        bare = httpx.post(f"{base}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        api = post(base, "/v1/search/text", {"query": "kick"})
        assert bare.status_code == 401 == api.status_code
        assert bare.json()["detail"] == api.json()["detail"]
        wrong = httpx.post(f"{base}/mcp", json={}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        (allowed,) = session(over_http(f"{base}/mcp", {"Authorization": f"Bearer {KEY}"}), calls)
        assert structured(allowed)["count"] == 1
