"""The project context through the MCP SDK's client: ``search_samples``, ``similar_samples``
and ``build_palette`` take it, their hits carry ``fit`` (the HTTP API's, field for field), a
bad context is a tool error, and a palette prefers the samples that fit, on a library built
so that the top-scoring sample does not fit and a slightly lower one does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from tests.support.fit_library import PROJECT, QUERY, FitLibrary, write_fit_library
from tests.support.live import live_service
from tests.support.mcp_helpers import over_http, session, structured, tool_problem
from timbre.fit import ProjectContext, fit_of
from timbre.settings import load_settings


def call(url: str, tool: str, arguments: dict[str, Any]) -> Any:
    async def body(client: Client) -> Any:
        return await client.call_tool(tool, arguments)

    return session(over_http(f"{url}/mcp"), body)


def api(url: str, route: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{url}{route}", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return dict(response.json())


def check_fits(hits: list[dict[str, Any]], bpm: float | None, key: str | None) -> None:
    project = ProjectContext.of(bpm, key)
    for hit in hits:
        fit = {k: v for k, v in hit["fit"].items() if k != "audio_url"}
        assert fit == fit_of(project, hit).as_dict(), hit["id"]


def test_the_tools_say_what_fit_means(url: str) -> None:
    async def body(client: Client) -> Any:
        return (await client.list_tools()).tools

    tools = {t.name: t for t in session(over_http(f"{url}/mcp"), body)}
    for name in ("search_samples", "similar_samples", "build_palette"):
        words = tools[name].description or ""
        assert "fit" in words and "stretch" in words and "relative" in words, name
        assert "context" in tools[name].input_schema["properties"], name
    project = tools["search_samples"].input_schema["$defs"]["ProjectIn"]["properties"]
    assert {"bpm", "key", "tolerance_pct", "sort", "only_fitting"} == set(project)
    brief = tools["search_samples"].output_schema["$defs"]["SampleBrief"]["properties"]
    assert "fit" in brief


def test_search_samples_with_a_context_fits_every_hit_as_the_api_does(url: str) -> None:
    arguments = {"query": "drum loop", "top_k": 20, "context": {"bpm": 124, "sort": "fit"}}
    hits = structured(call(url, "search_samples", arguments))["hits"]
    same = api(url, "/v1/search/text", arguments)["hits"]
    assert [h["id"] for h in hits] == [h["id"] for h in same]
    assert [h["fit"] for h in hits] == [h["fit"] for h in same]
    check_fits(hits, 124, None)
    flags = [h["fit"]["fits"] for h in hits]
    assert flags == sorted(flags, reverse=True) and set(flags) == {True, False}
    stretched = [h for h in hits if h["fit"]["stretch_pct"]]
    assert stretched and all(
        h["fit"]["audio_url"] == f"{url}/v1/items/{h['id']}/audio?bpm=124&semitones=0"
        for h in stretched
    )
    plain = structured(call(url, "search_samples", {"query": "drum loop", "top_k": 5}))["hits"]
    assert all(h["fit"] is None for h in plain)


def test_similar_samples_takes_a_context(url: str) -> None:
    first = structured(call(url, "search_samples", {"query": "drum loop", "top_k": 1}))["hits"]
    context = {"bpm": 88, "only_fitting": True}
    for extra, route in (({}, "/v1/search/audio"), ({"query": "darker"}, "/v1/search/hybrid")):
        arguments = {"id": first[0]["id"], "top_k": 20, "context": context, **extra}
        hits = structured(call(url, "similar_samples", arguments))["hits"]
        same = api(url, route, arguments)["hits"]
        assert [h["id"] for h in hits] == [h["id"] for h in same]
        assert hits and all(h["fit"]["fits"] for h in hits)
        check_fits(hits, 88, None)
        # 88 BPM and 174 BPM (half time, -0.6 %) loops fit; 122 and 128 do not
        assert {h["bpm"] for h in hits if h["kind"] == "loop"} == {88.0, 174.0}


@pytest.mark.parametrize(
    ("tool", "arguments", "named"),
    [
        ("search_samples", {"query": "kick", "context": {"bpm": 0}}, "context.bpm"),
        ("search_samples", {"query": "kick", "context": {"bpm": "NaN"}}, "context.bpm"),
        ("search_samples", {"query": "kick", "context": {"key": "H#"}}, "context.key"),
        ("search_samples", {"query": "kick", "context": {}}, "a bpm, a key or both"),
        ("similar_samples", {"id": "x", "context": {"bpm": -1}}, "context.bpm"),
        ("build_palette", {"slots": [{"query": "kick"}], "context": {"bpm": 1000}}, "context.bpm"),
        ("build_palette", {"slots": [{"query": "kick"}], "context": {"key": "Q"}}, "context.key"),
    ],
)
def test_a_bad_context_is_a_tool_error(
    url: str, tool: str, arguments: dict[str, Any], named: str
) -> None:
    status, detail = tool_problem(call(url, tool, arguments))
    assert status == 422 and named in detail, detail


def test_a_palette_context_with_one_tempo_fits_and_keeps_every_slot_full(url: str) -> None:
    arguments = {
        "context": {"bpm": 124},
        "slots": [
            {"slot": "kick", "query": "punchy kick", "filter": {"kind": "one_shot"}},
            {"slot": "groove", "query": "drum loop", "filter": {"kind": "loop"}},
        ],
    }
    kick, groove = structured(call(url, "build_palette", arguments))["slots"]
    batch = api(
        url,
        "/v1/search/batch",
        {"queries": arguments["slots"], "context": {"bpm": 124}, "distinct": True},
    )["results"]
    for slot, result in zip((kick, groove), batch, strict=True):
        assert [h["id"] for h in slot["hits"]] == [h["id"] for h in result["hits"]]
        assert [h["fit"] for h in slot["hits"]] == [h["fit"] for h in result["hits"]]
        assert slot["notes"] == result["notes"]
        assert any("project bpm 124" in n for n in slot["notes"])
    # not a filter: all four loops come back, the two in tempo first
    assert [h["bpm"] for h in groove["hits"]][:2] in ([122.0, 128.0], [128.0, 122.0])
    assert sorted(h["bpm"] for h in groove["hits"]) == [88.0, 122.0, 128.0, 174.0]
    assert all(h["fit"]["fits"] and h["fit"]["stretch_pct"] is None for h in kick["hits"])
    check_fits(groove["hits"], 124, None)


# -- a library where the best match does not fit and the next one does ---------------------


@pytest.fixture(scope="module")
def built(
    tiny_bundle: Path, text_embedder: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, FitLibrary]]:
    settings = load_settings(
        data_dir=tmp_path_factory.mktemp("fit-lib"), models={"bundle": tiny_bundle, "threads": 2}
    )
    library = write_fit_library(settings, text_embedder.embed([QUERY])[0])
    with live_service(settings) as base:
        yield base, library


def test_a_palette_with_a_context_prefers_the_sample_that_fits(
    built: tuple[str, FitLibrary],
) -> None:
    url, library = built
    slots = [{"slot": "bass", "query": QUERY, "top_k": 4}]
    [plain] = structured(call(url, "build_palette", {"slots": slots}))["slots"]
    assert [h["id"] for h in plain["hits"]][:2] == [library.top, library.runner_up]
    assert plain["hits"][0]["score"] > plain["hits"][1]["score"] > 0.99  # a hair apart
    [fitted] = structured(
        call(url, "build_palette", {"slots": slots, "context": {"genre": "techno", **PROJECT}})
    )["slots"]
    hits = fitted["hits"]
    assert hits[0]["id"] == library.runner_up
    assert hits[0]["fit"] | {"audio_url": None} == {
        "fits": True,
        "stretch_pct": 0.81,  # 124 / 123
        "tempo_multiple": 1.0,
        "key_relation": "relative",  # C in A minor
        "semitones": 0,
        "audio_url": None,
    }
    assert hits[0]["fit"]["audio_url"].endswith("?bpm=124&semitones=0")
    assert library.top not in [h["id"] for h in hits[:3]]  # two other samples fit before it
    check_fits(hits, 124, "Am")
    # a key list or a bpm range is a filter, not a preference: the top sample stays first
    [ranged] = structured(
        call(url, "build_palette", {"slots": slots, "context": {"bpm": "90-130"}})
    )["slots"]
    assert ranged["hits"][0]["id"] == library.top and ranged["hits"][0]["fit"] is None
    # the HTTP batch agrees
    batch = api(url, "/v1/search/batch", {"queries": slots, "context": PROJECT})["results"]
    assert [h["id"] for h in batch[0]["hits"]] == [h["id"] for h in hits]


def test_sort_by_fit_lifts_the_sample_that_fits_in_a_search(built: tuple[str, FitLibrary]) -> None:
    url, library = built
    by_score = structured(
        call(url, "search_samples", {"query": QUERY, "top_k": 3, "context": PROJECT})
    )["hits"]
    assert by_score[0]["id"] == library.top and not by_score[0]["fit"]["fits"]
    by_fit = structured(
        call(
            url,
            "search_samples",
            {"query": QUERY, "top_k": 3, "context": {**PROJECT, "sort": "fit"}},
        )
    )["hits"]
    assert by_fit[0]["id"] == library.runner_up and all(h["fit"]["fits"] for h in by_fit)
    only = structured(
        call(
            url,
            "search_samples",
            {"query": QUERY, "top_k": 20, "context": {**PROJECT, "only_fitting": True}},
        )
    )["hits"]
    fitting = {library.runner_up, *library.others[1::2]}  # the 125 BPM ones
    assert {h["id"] for h in only} == fitting
