"""The HTTP API's searches through TestClient on a small indexed library (tiny random-weight
models): FAISS and Qdrant, paging, filters, audio, hybrid and batch searches.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from ingest.synthetic import Library
from tests.support.api_fixtures import ok
from timbre.musickey import normalize_key

# -- searches --------------------------------------------------------------------------------


def test_text_search_unfiltered_is_answered_by_faiss(client: TestClient, library: Library) -> None:
    body = ok(client.post("/v1/search/text", json={"query": "punchy techno kick", "top_k": 5}))
    assert body["engine"] == "faiss" and body["took_ms"] >= 0
    assert len(body["hits"]) == 5
    scores = [h["score"] for h in body["hits"]]
    assert scores == sorted(scores, reverse=True)
    hit = body["hits"][0]
    assert hit["path"] in {str(p) for p in library.files}
    assert hit["audio_url"].endswith(f"/v1/items/{hit['id']}/audio")
    assert {"pack", "genre", "bpm", "key", "instrument", "kind", "duration_s", "tags"} <= set(hit)


def test_paging_with_offset(client: TestClient) -> None:
    full = ok(client.post("/v1/search/text", json={"query": "pad", "top_k": 10}))["hits"]
    page = ok(client.post("/v1/search/text", json={"query": "pad", "top_k": 4, "offset": 3}))[
        "hits"
    ]
    assert [h["id"] for h in page] == [h["id"] for h in full[3:7]]


FILTERS: list[tuple[dict[str, Any], Any]] = [
    ({"instrument": "kick"}, lambda h: h["instrument"] == "kick"),
    ({"genre": ["techno", "house"]}, lambda h: h["genre"] in ("techno", "house")),
    ({"kind": "loop"}, lambda h: h["kind"] == "loop"),
    ({"key": "A minor"}, lambda h: h["key"] == "Am"),
    # keys keep the spelling of the name and match their enharmonics (Bb = A#)
    ({"key": ["Bb"]}, lambda h: normalize_key(h["key"]) == "A#"),
    ({"key": ["A#"]}, lambda h: normalize_key(h["key"]) == "A#"),
    # keyword filters ignore case
    (
        {"genre": "TECHNO", "instrument": "Kick"},
        lambda h: (h["genre"], h["instrument"]) == ("techno", "kick"),
    ),
    ({"pack": "Deep House Grooves"}, lambda h: h["pack"] == "Deep House Grooves"),
    ({"bpm": "120-130"}, lambda h: 120 <= h["bpm"] <= 130),
    ({"bpm": {"min": 170}}, lambda h: h["bpm"] >= 170),
    ({"duration_s": "0-0.5"}, lambda h: h["duration_s"] <= 0.5),
    ({"tags": ["kicks", "snares"]}, lambda h: {"kicks", "snares"} & set(h["tags"])),
    (
        {"instrument": "bass", "kind": "one_shot", "genre": "techno"},
        lambda h: (h["instrument"], h["kind"], h["genre"]) == ("bass", "one_shot", "techno"),
    ),
    ({"bpm_source": "name"}, lambda h: h["bpm_source"] == "name" and h["bpm"]),
    ({"key_source": ["name", "tags"]}, lambda h: h["key"] and h["key_confidence"] is None),
]


@pytest.mark.parametrize(("filt", "check"), FILTERS, ids=[str(f) for f, _ in FILTERS])
def test_filtered_search_is_answered_by_qdrant(
    client: TestClient, filt: dict[str, Any], check: Any
) -> None:
    body = ok(client.post("/v1/search/text", json={"query": "sound", "top_k": 50, "filter": filt}))
    assert body["engine"] == "qdrant"
    assert body["hits"], f"the library holds matches for {filt}"
    assert all(check(h) for h in body["hits"])


def test_path_prefix_filter(client: TestClient, library: Library) -> None:
    folder = str(library.root / "Lofi Hip Hop Kit" / "Loops")
    body = ok(
        client.post(
            "/v1/search/text",
            json={"query": "loop", "top_k": 50, "filter": {"path_prefix": folder}},
        )
    )
    expected = {str(p) for p in library.files if str(p).startswith(folder + "/")}
    assert {h["path"] for h in body["hits"]} == expected


def test_faiss_and_qdrant_agree_through_the_api(client: TestClient) -> None:
    """A filter every point passes sends the same query to Qdrant: same ids, same scores."""
    query = {"query": "warm atmospheric pad", "top_k": 15}
    fast = ok(client.post("/v1/search/text", json=query))
    exact = ok(client.post("/v1/search/text", json={**query, "filter": {"duration_s": {"min": 0}}}))
    assert (fast["engine"], exact["engine"]) == ("faiss", "qdrant")
    assert [h["id"] for h in fast["hits"]] == [h["id"] for h in exact["hits"]]
    np.testing.assert_allclose(
        [h["score"] for h in fast["hits"]], [h["score"] for h in exact["hits"]], atol=1e-5
    )


def test_audio_search_by_id_finds_the_item_itself(client: TestClient) -> None:
    some = ok(client.post("/v1/search/text", json={"query": "snare", "top_k": 3}))["hits"][2]
    body = ok(client.post("/v1/search/audio", json={"id": some["id"], "top_k": 3}))
    assert body["hits"][0]["id"] == some["id"]
    assert body["hits"][0]["score"] == pytest.approx(1.0, abs=1e-5)


def test_audio_search_by_path_and_by_upload_agree(client: TestClient, library: Library) -> None:
    path = next(p for p in library.files if p.suffix == ".flac")
    by_path = ok(client.post("/v1/search/audio", json={"path": str(path), "top_k": 5}))
    with path.open("rb") as handle:
        by_upload = ok(
            client.post(
                "/v1/search/audio/upload",
                files={"file": (path.name, handle)},
                data={"top_k": "5"},
            )
        )
    assert by_path["hits"][0]["path"] == str(path)
    assert [h["id"] for h in by_upload["hits"]] == [h["id"] for h in by_path["hits"]]


@pytest.mark.parametrize("route", ["/v1/search/audio", "/v1/search/hybrid"])
def test_an_upload_to_the_old_path_is_answered_by_the_upload_route(
    client: TestClient, library: Library, route: str
) -> None:
    """The JSON-or-upload form of the routes before /upload keeps working for a release."""
    path = next(p for p in library.files if p.suffix == ".wav")
    data = {"top_k": "5", "query": "kick", "filter": '{"kind": "one_shot"}'}
    if route.endswith("audio"):
        del data["query"]
    old, new = (
        ok(client.post(url, files={"file": (path.name, path.read_bytes())}, data=data))
        for url in (route, f"{route}/upload")
    )
    assert old["query"] == new["query"] and old["query"]["upload"] == path.name
    assert [h["id"] for h in old["hits"]] == [h["id"] for h in new["hits"]]
    metrics = client.get("/metrics").text
    assert f'route="{route}/upload"' in metrics


def test_upload_with_a_filter(client: TestClient, library: Library) -> None:
    path = next(p for p in library.files if "Kick" in p.name)
    with path.open("rb") as handle:
        body = ok(
            client.post(
                "/v1/search/audio/upload",
                files={"file": (path.name, handle)},
                data={"top_k": "5", "filter": '{"instrument": "hat"}'},
            )
        )
    assert body["engine"] == "qdrant" and all(h["instrument"] == "hat" for h in body["hits"])


def test_hybrid_alpha_endpoints_equal_pure_text_and_pure_audio(client: TestClient) -> None:
    ref = ok(client.post("/v1/search/text", json={"query": "bass", "top_k": 1}))["hits"][0]["id"]
    text = ok(client.post("/v1/search/text", json={"query": "dark pad", "top_k": 8}))
    audio = ok(client.post("/v1/search/audio", json={"id": ref, "top_k": 8}))
    all_text = ok(
        client.post(
            "/v1/search/hybrid", json={"query": "dark pad", "id": ref, "alpha": 1.0, "top_k": 8}
        )
    )
    all_audio = ok(
        client.post(
            "/v1/search/hybrid", json={"query": "dark pad", "id": ref, "alpha": 0.0, "top_k": 8}
        )
    )
    assert [h["id"] for h in all_text["hits"]] == [h["id"] for h in text["hits"]]
    assert [h["id"] for h in all_audio["hits"]] == [h["id"] for h in audio["hits"]]
    mixed = ok(
        client.post(
            "/v1/search/hybrid", json={"query": "dark pad", "id": ref, "alpha": 0.7, "top_k": 8}
        )
    )
    assert mixed["query"]["alpha"] == 0.7


def test_batch_for_an_assistant_with_distinct_slots(client: TestClient) -> None:
    slots = [
        {"slot": "kick", "query": "kick", "top_k": 3, "filter": {"instrument": "kick"}},
        {"slot": "any1", "query": "kick", "top_k": 3},
        {"slot": "any2", "query": "kick", "top_k": 3},
        {"slot": "pad", "query": "warm pad", "top_k": 2, "filter": {"genre": "house"}},
    ]
    plain = ok(client.post("/v1/search/batch", json={"queries": slots}))
    assert [r["slot"] for r in plain["results"]] == ["kick", "any1", "any2", "pad"]
    assert plain["results"][1]["hits"] == plain["results"][2]["hits"]  # same query, same answer
    distinct = ok(client.post("/v1/search/batch", json={"queries": slots, "distinct": True}))
    ids = [h["id"] for r in distinct["results"] for h in r["hits"]]
    pads = distinct["results"][3]
    assert len(ids) == len(set(ids)) == 9 + len(pads["hits"])
    # the slot named "pad" looks for pads (the library holds some), and says so
    assert pads["hits"] and all(h["instrument"] == "pad" for h in pads["hits"])
    assert pads["notes"] == ["instrument pad (from the slot name 'pad')"]
    assert all(h["instrument"] == "kick" for h in distinct["results"][0]["hits"])
