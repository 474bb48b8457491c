"""Steering through the HTTP API on the small indexed library (tiny random-weight models):
POST /v1/search/recommend and excluded words in the text searches. Every engine answers a
steered query alike, ``kick -distorted`` is the recommend query with the text ``kick`` and the
avoided word ``distorted``, and bad input is a 4xx naming the problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from ingest.synthetic import Library
from tests.support.api_fixtures import ok, problem

RECOMMEND = "/v1/search/recommend"
EVERYTHING = {"duration_s": {"min": 0}}  # every sample passes: Qdrant answers the same set
NO_ID = "00000000-0000-5000-8000-000000000000"


def ids(body: dict[str, Any]) -> list[str]:
    return [h["id"] for h in body["hits"]]


def same_hits(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert ids(a) == ids(b) and ids(a)
    np.testing.assert_allclose(
        [h["score"] for h in a["hits"]], [h["score"] for h in b["hits"]], atol=1e-5
    )


@pytest.fixture(scope="module")
def some(client: TestClient) -> list[str]:
    """Ids of samples of the library, from a plain search."""
    return ids(ok(client.post("/v1/search/text", json={"query": "drum", "top_k": 8})))


def test_recommend_by_examples_leaves_the_examples_out(client: TestClient, some: list[str]) -> None:
    body = {"positive": some[:2], "negative": some[2:3], "top_k": 10}
    got = ok(client.post(RECOMMEND, json=body))
    assert got["engine"] == "faiss" and len(got["hits"]) == 10
    assert not set(some[:3]) & set(ids(got))
    scores = [h["score"] for h in got["hits"]]
    assert scores == sorted(scores, reverse=True)
    assert got["query"] == {
        "positive": some[:2],
        "negative": some[2:3],
        "text": None,
        "avoid": [],
    }
    everything = ok(client.post("/v1/search/text", json={"query": "x", "top_k": 1}))["total"]
    assert got["total"] == everything - 3
    # One liked sample alone: its nearest neighbours, itself left out.
    like = ok(client.post(RECOMMEND, json={"positive": some[:1], "top_k": 5}))
    audio = ok(client.post("/v1/search/audio", json={"id": some[0], "top_k": 6}))
    same_hits(like, {"hits": audio["hits"][1:]})


@pytest.mark.parametrize(
    "steering",
    [
        {"positive": [0, 1], "negative": [2]},
        {"positive": [0], "query": "warm pad", "avoid": ["noise"]},
        {"query": 'punchy kick -distorted -"lo fi"'},
        {"positive": [3], "negative": [4, 5], "query": "dark -bright"},
    ],
    ids=["ids", "ids+text+avoid", "text only", "all"],
)
def test_faiss_and_qdrant_give_the_same_recommendations(
    client: TestClient, some: list[str], steering: dict[str, Any]
) -> None:
    body = {
        **steering,
        "positive": [some[i] for i in steering.get("positive", [])],
        "negative": [some[i] for i in steering.get("negative", [])],
        "top_k": 12,
    }
    fast = ok(client.post(RECOMMEND, json=body))
    exact = ok(client.post(RECOMMEND, json={**body, "filter": EVERYTHING}))
    assert (fast["engine"], exact["engine"]) == ("faiss", "qdrant")
    same_hits(fast, exact)
    paged = ok(client.post(RECOMMEND, json={**body, "top_k": 4, "offset": 8}))
    assert ids(paged) == ids(fast)[8:12]


def test_excluded_words_are_the_recommend_query_of_text_and_words(client: TestClient) -> None:
    typed = ok(client.post("/v1/search/text", json={"query": "kick -distorted", "top_k": 10}))
    listed = ok(
        client.post("/v1/search/text", json={"query": "kick", "avoid": ["distorted"], "top_k": 10})
    )
    steered = ok(
        client.post(RECOMMEND, json={"query": "kick", "avoid": ["distorted"], "top_k": 10})
    )
    plain = ok(client.post("/v1/search/text", json={"query": "kick", "top_k": 10}))
    assert typed["query"] == listed["query"] == {"text": "kick", "avoid": ["distorted"]}
    same_hits(typed, listed)
    same_hits(typed, steered)
    # The cached vector of "kick" is not the steered one, nor the other way round.
    assert [h["score"] for h in plain["hits"]] != [h["score"] for h in typed["hits"]]
    assert plain["query"] == {"text": "kick"}
    again = ok(client.post("/v1/search/text", json={"query": "kick -distorted", "top_k": 10}))
    same_hits(again, typed)
    # Qdrant (a filter everything passes) answers the same.
    filtered = {"query": "kick -distorted", "top_k": 10, "filter": EVERYTHING}
    exact = ok(client.post("/v1/search/text", json=filtered))
    assert exact["engine"] == "qdrant"
    same_hits(exact, typed)
    exact_recommend = ok(
        client.post(RECOMMEND, json={"query": "kick -distorted", "filter": EVERYTHING, "top_k": 10})
    )
    same_hits(exact_recommend, typed)


def test_a_hybrid_upload_takes_words_to_avoid_as_form_fields(
    client: TestClient, library: Library
) -> None:
    path = next(p for p in library.files if p.suffix == ".wav")

    def upload(**fields: Any) -> dict[str, Any]:
        form = {"query": "darker", "alpha": "0.5", "top_k": "6", **fields}
        found: dict[str, Any] = ok(
            client.post(
                "/v1/search/hybrid/upload",
                files={"file": (path.name, path.read_bytes())},
                data=form,
            )
        )
        return found

    listed = upload(avoid=["noise", "hiss"])
    typed = upload(query="darker -noise -hiss")
    plain = upload()
    assert listed["query"]["text"] == "darker" and listed["query"]["avoid"] == ["noise", "hiss"]
    assert typed["query"] == listed["query"]
    same_hits(listed, typed)
    assert [h["score"] for h in listed["hits"]] != [h["score"] for h in plain["hits"]]
    refused = client.post(
        "/v1/search/hybrid/upload",
        files={"file": (path.name, path.read_bytes())},
        data={"query": "darker", "avoid": ["  "]},
    )
    assert refused.status_code == 422 and "avoid" in refused.json()["detail"]


def test_hybrid_and_batch_read_excluded_words(client: TestClient, some: list[str]) -> None:
    hybrid = {"id": some[0], "query": "darker -noise", "alpha": 0.5, "top_k": 6}
    steered = ok(client.post("/v1/search/hybrid", json=hybrid))
    plain = ok(client.post("/v1/search/hybrid", json={**hybrid, "query": "darker"}))
    listed = ok(
        client.post("/v1/search/hybrid", json={**hybrid, "query": "darker", "avoid": ["noise"]})
    )
    assert steered["query"]["text"] == "darker" and steered["query"]["avoid"] == ["noise"]
    assert [h["score"] for h in steered["hits"]] != [h["score"] for h in plain["hits"]]
    assert listed["query"] == steered["query"]
    same_hits(listed, steered)

    batch = {
        "queries": [
            {"query": "kick -distorted", "top_k": 5},
            {"query": "pad", "avoid": ["bright"], "top_k": 5},
        ]
    }
    slots = ok(client.post("/v1/search/batch", json=batch))["results"]
    assert slots[0]["query"] == {"text": "kick", "avoid": ["distorted"]}
    assert slots[1]["query"] == {"text": "pad", "avoid": ["bright"]}
    text = ok(client.post("/v1/search/text", json={"query": "kick -distorted", "top_k": 5}))
    same_hits(slots[0], text)


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/v1/search/text", {"query": "-distorted"}),
        ("/v1/search/text", {"query": '-"lo fi" -noise'}),
        ("/v1/search/hybrid", {"id": NO_ID, "query": "-distorted"}),
        ("/v1/search/batch", {"queries": [{"query": "kick"}, {"query": "-kick"}]}),
        (RECOMMEND, {"query": "-distorted"}),
        (RECOMMEND, {"negative": [NO_ID]}),
        (RECOMMEND, {}),
        (RECOMMEND, {"avoid": ["noise"]}),
    ],
)
def test_nothing_to_look_for_is_refused(
    client: TestClient, route: str, body: dict[str, Any]
) -> None:
    response = client.post(route, json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "only words to avoid" in detail or "positive id or a query" in detail, detail


def test_unknown_ids_are_named(client: TestClient, some: list[str]) -> None:
    body = {"positive": [some[0], NO_ID], "negative": ["not-an-id"]}
    detail = problem(client.post(RECOMMEND, json=body), 404, "not_found")["detail"]
    assert NO_ID in detail and "not-an-id" in detail and some[0] not in detail


BAD_BODIES = [
    {"positive": "abc"},
    {"positive": [1, 2]},
    {"positive": [None]},
    {"positive": [""]},
    {"positive": ["x" * 101]},
    {"positive": [NO_ID] * 65},
    {"query": "kick", "avoid": "distorted"},
    {"query": "kick", "avoid": ["  "]},
    {"query": "kick", "avoid": [3]},
    {"query": "kick", "avoid": ["x"] * 65},
    {"query": 5},
    {"query": "   "},
    {"query": "kick", "top_k": True},
    {"query": "kick", "top_k": 0},
    {"query": "kick", "offset": -1},
    {"query": "kick", "filter": {"bpm": "fast"}},
    {"query": "kick", "colour": "red"},
    {"query": "kick", "positive": {"id": NO_ID}},
]


@pytest.mark.parametrize("body", BAD_BODIES, ids=[str(b)[:60] for b in BAD_BODIES])
def test_malformed_requests_are_422(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post(RECOMMEND, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


def test_too_many_examples_together_are_refused(client: TestClient, some: list[str]) -> None:
    words = [f"word{i}" for i in range(60)]
    body = {"positive": some[:4], "query": "kick", "avoid": words}
    detail = problem(client.post(RECOMMEND, json=body), 422, "invalid_request")["detail"]
    assert "at most 64 examples" in detail
    both = {"positive": some[:1], "negative": some[:1]}
    assert "both" in problem(client.post(RECOMMEND, json=both), 422, "invalid_request")["detail"]


def test_not_json_and_wrong_media_type_are_4xx(client: TestClient) -> None:
    json_type = {"content-type": "application/json"}
    assert client.post(RECOMMEND, content=b"{nope", headers=json_type).status_code == 400
    response = client.post(RECOMMEND, content=b"x", headers={"content-type": "text/plain"})
    assert 400 <= response.status_code < 500


def test_a_sample_whose_file_is_gone_still_steers(
    client: TestClient, library: Library, some: list[str]
) -> None:
    item = ok(client.get(f"/v1/items/{some[1]}"))
    path = Path(item["path"])
    hidden = path.with_name(path.name + ".away")
    path.rename(hidden)
    try:
        assert client.get(f"/v1/items/{some[1]}/audio").status_code >= 400  # really gone
        got = ok(client.post(RECOMMEND, json={"positive": [some[1]], "top_k": 5}))
        assert len(got["hits"]) == 5 and some[1] not in ids(got)
    finally:
        hidden.rename(path)
