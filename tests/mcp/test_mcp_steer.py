"""similar_samples steered away from samples (``unlike``) and words (``avoid``, ``-word``),
through the SDK's own client against a live service: the recommend route's answer, the
examples never among the hits, and the HTTP API's problems for bad arguments."""

from __future__ import annotations

from typing import Any

import httpx
from mcp import Client

from app.schemas.recommend import RecommendIn
from tests.support.mcp_helpers import http_problem, over_http, session, structured, tool_problem

NO_ID = "00000000-0000-5000-8000-000000000000"


def recommend(url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}/v1/search/recommend", json=body, timeout=60)


def test_unlike_and_avoid_are_the_recommend_route(url: str) -> None:
    async def body(client: Client) -> dict[str, Any]:
        out: dict[str, Any] = {}
        plain = structured(await client.call_tool("search_samples", {"query": "drum"}))
        first, second, third = (h["id"] for h in plain["hits"][:3])
        out["ids"] = first, second, third
        out["schema"] = {t.name: t for t in (await client.list_tools()).tools}
        out["unlike"] = await client.call_tool(
            "similar_samples", {"id": first, "unlike": [second, third], "top_k": 5}
        )
        out["avoid"] = await client.call_tool(
            "similar_samples", {"id": first, "query": "darker", "avoid": ["noise"], "top_k": 5}
        )
        out["typed"] = await client.call_tool(
            "similar_samples", {"id": first, "query": "darker -noise", "top_k": 5}
        )
        out["hybrid"] = await client.call_tool(
            "similar_samples", {"id": first, "query": "darker", "top_k": 5}
        )
        return out

    got = session(over_http(f"{url}/mcp"), body)
    first, second, third = got["ids"]
    schema = got["schema"]["similar_samples"].input_schema["properties"]
    assert schema["unlike"]["anyOf"][0]["maxItems"] == 64
    assert schema["avoid"]["anyOf"][0]["items"]["pattern"]

    unlike = structured(got["unlike"])["hits"]
    api = recommend(url, {"positive": [first], "negative": [second, third], "top_k": 5}).json()
    assert [h["id"] for h in unlike] == [h["id"] for h in api["hits"]] and len(unlike) == 5
    assert not {first, second, third} & {h["id"] for h in unlike}

    avoid = structured(got["avoid"])["hits"]
    api = recommend(
        url, {"positive": [first], "query": "darker", "avoid": ["noise"], "top_k": 5}
    ).json()
    assert [h["id"] for h in avoid] == [h["id"] for h in api["hits"]]
    # '-noise' in the query is the same request as avoid: ["noise"].
    assert [h["id"] for h in structured(got["typed"])["hits"]] == [h["id"] for h in avoid]
    # Without steering it stays the hybrid search, the sample itself first.
    assert structured(got["hybrid"])["hits"][0]["id"] == first


BAD = [
    ({"id": NO_ID, "unlike": ["x"]}, {"positive": [NO_ID], "negative": ["x"]}),
    ({"id": NO_ID, "avoid": ["  "]}, {"positive": [NO_ID], "avoid": ["  "]}),
    ({"id": NO_ID, "unlike": [NO_ID] * 65}, {"positive": [NO_ID], "negative": [NO_ID] * 65}),
    ({"id": NO_ID, "unlike": "x"}, {"positive": [NO_ID], "negative": "x"}),
]


def test_bad_steering_is_a_tool_error_with_the_http_apis_message(url: str) -> None:
    async def body(client: Client) -> list[Any]:
        calls = [await client.call_tool("similar_samples", args) for args, _ in BAD]
        calls.append(
            await client.call_tool("similar_samples", {"id": NO_ID, "unlike": [], "alpha": 0.3})
        )
        calls.append(
            await client.call_tool(
                "similar_samples", {"id": NO_ID, "avoid": ["noise"], "alpha": 0.3}
            )
        )
        return calls

    *bad, unsteered, with_alpha = session(over_http(f"{url}/mcp"), body)
    for (args, http), result in zip(BAD, bad, strict=True):
        status, detail = tool_problem(result)
        want_status, want = http_problem(recommend(url, http))
        assert status == want_status and 400 <= status < 500, args
        if status == 404:
            assert detail == want
    # An empty unlike list steers nothing: alpha applies (and the id is unknown).
    assert tool_problem(unsteered)[0] == 404
    status, detail = tool_problem(with_alpha)
    assert status == 422 and "alpha" in detail


def test_a_steered_similar_request_is_a_recommend_request() -> None:
    from app.schemas.mcp import SimilarIn

    asked = SimilarIn(id=NO_ID, query="darker -noise", top_k=3)
    assert asked.to_http() == RecommendIn(positive=[NO_ID], query="darker -noise", top_k=3)
    assert SimilarIn(id=NO_ID, query="lo-fi").to_http().__class__.__name__ == "HybridSearchIn"
