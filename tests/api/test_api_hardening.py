"""Hostile and sloppy HTTP requests: each gets a specific 4xx problem body, never a 5xx.

One test per defect found by hand and by schemathesis (issue 10), on the real app with the
tiny random-weight models; bodies are streamed through httpx's ASGI transport where it matters
how much of them the server reads.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ingest.synthetic import Library
from tests.support.api_fixtures import ok, problem


def an_id(client: TestClient) -> str:
    return ok(client.post("/v1/search/text", json={"query": "kick", "top_k": 1}))["hits"][0]["id"]


def a_file(library: Library) -> Path:
    return next(p for p in library.files if p.suffix == ".wav")


# -- 500s that were ------------------------------------------------------------------------

NUL_REQUESTS = [
    ("/v1/search/audio", {"path": "{root}/a\x00b.wav"}),
    ("/v1/search/hybrid", {"path": "{root}/a\x00b.wav", "query": "kick"}),
    ("/v1/ingest", {"paths": ["{root}/sub\x00dir"]}),
]


@pytest.mark.parametrize(("route", "body"), NUL_REQUESTS, ids=[r for r, _ in NUL_REQUESTS])
def test_a_nul_byte_in_a_path_is_a_422(
    client: TestClient, library: Library, route: str, body: dict[str, Any]
) -> None:
    text = json.dumps(body).replace("{root}", str(library.root))
    response = client.post(route, content=text, headers={"Content-Type": "application/json"})
    assert "NUL" in problem(response, 422, "invalid_request")["detail"]


def test_a_nul_byte_in_stored_path_text_is_refused(client: TestClient, library: Library) -> None:
    """``\\x00`` in a path is the stored text form of a NUL byte (found by the fuzz test)."""
    body = {"path": f"{library.root}/a\\x00b.wav", "query": "kick"}
    problem(client.post("/v1/search/hybrid", json=body), 403, "forbidden_path")


JSON_ROUTES = ["/v1/search/text", "/v1/search/audio", "/v1/search/hybrid", "/v1/search/batch"]
MALFORMED = {
    "not UTF-8": (b'{"query": "caf\xe9", "id": "x"}', "not valid UTF-8"),
    "nested 1,500 deep": (b"[" * 1500 + b"]" * 1500, "nested too deeply"),
    "not JSON": (b'{"query": ', "not valid JSON"),
    "a 5,000-digit number": (b'{"top_k": 1' + b"0" * 5000 + b"}", "not valid JSON"),
}


@pytest.mark.parametrize("route", [*JSON_ROUTES, "/v1/ingest"])
@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_body_is_the_same_400_on_every_route(
    client: TestClient, route: str, case: str
) -> None:
    raw, reason = MALFORMED[case]
    response = client.post(route, content=raw, headers={"Content-Type": "application/json"})
    assert reason in problem(response, 400, "malformed_body")["detail"]


# -- media types -----------------------------------------------------------------------------


@pytest.mark.parametrize("route", JSON_ROUTES)
@pytest.mark.parametrize("media", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_in_another_media_type_is_a_415_on_every_route(
    client: TestClient, route: str, media: str | None
) -> None:
    body = json.dumps({"query": "kick", "id": an_id(client)})
    headers = {"Content-Type": media} if media else {}
    response = client.post(route, content=body, headers=headers)
    found = problem(response, 415, "unsupported_media_type")
    assert (
        "application/json" in found["detail"] and "application/json" in response.headers["accept"]
    )
    if route in ("/v1/search/audio", "/v1/search/hybrid"):
        assert "multipart/form-data" in response.headers["accept"]


@pytest.mark.parametrize("field", ["id", "path"])
@pytest.mark.parametrize("route", ["/v1/search/audio", "/v1/search/hybrid"])
def test_an_upload_beside_an_id_or_path_is_refused(
    client: TestClient, library: Library, route: str, field: str
) -> None:
    path = a_file(library)
    reference = an_id(client) if field == "id" else str(path)
    response = client.post(
        route,
        files={"file": (path.name, path.read_bytes())},
        data={field: reference, "query": "kick"},
    )
    assert field in problem(response, 422, "invalid_request")["detail"]


def test_an_upload_with_an_empty_query_is_a_422(client: TestClient, library: Library) -> None:
    path = a_file(library)
    response = client.post(
        "/v1/search/hybrid", files={"file": (path.name, path.read_bytes())}, data={"query": ""}
    )
    assert "query" in problem(response, 422, "validation_error")["detail"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            {"query": "kick", "offset": False},
            "offset: Value error, expected a number, not true or false",
        ),
        (
            {"query": "kick", "top_k": True},
            "top_k: Value error, expected a number, not true or false",
        ),
        (
            {"query": "kick", "filter": {"bpm": {"min": True}}},
            "bpm.min: Input should be a valid number",
        ),
        (
            {"query": "kick", "filter": {"bpm": {"min": "9"}}},
            "bpm.min: Input should be a valid number",
        ),
    ],
)
def test_a_boolean_is_not_a_number(
    client: TestClient, body: dict[str, object], reason: str
) -> None:
    response = client.post("/v1/search/text", json=body)
    assert reason in problem(response, 422, "validation_error")["detail"]


def test_a_number_is_not_a_boolean(client: TestClient) -> None:
    body = {"queries": [{"query": "kick"}], "distinct": 0}
    response = client.post("/v1/search/batch", json=body)
    assert "distinct" in problem(response, 422, "validation_error")["detail"]


def test_the_facet_limit_maximum_is_in_the_schema(client: TestClient) -> None:
    parameters = client.get("/openapi.json").json()["paths"]["/v1/facets"]["get"]["parameters"]
    (limit,) = [p for p in parameters if p["name"] == "limit"]
    maximum = next(b["maximum"] for b in limit["schema"]["anyOf"] if b.get("type") == "integer")
    assert problem(client.get("/v1/facets", params={"limit": maximum + 1}), 422, "invalid_request")
    assert client.get("/v1/facets", params={"limit": maximum}).status_code == 200


@pytest.mark.parametrize("route", ["/v1/facets", "/v1/duplicates"])
def test_a_filter_parameter_is_json_and_documented_so(client: TestClient, route: str) -> None:
    assert (
        "not valid JSON"
        in problem(client.get(route, params={"filter": "AIFF"}), 422, "invalid_request")["detail"]
    )
    ok = client.get(route, params={"filter": '{"genre": "techno"}'})
    assert ok.status_code == 200, ok.text
    parameters = client.get("/openapi.json").json()["paths"][route]["get"]["parameters"]
    (declared,) = [p for p in parameters if p["name"] == "filter"]
    assert declared["content"]["application/json"]["schema"]["$ref"].endswith("/FilterIn")


def test_facet_fields_are_an_enum_in_the_schema(client: TestClient) -> None:
    parameters = client.get("/openapi.json").json()["paths"]["/v1/facets"]["get"]["parameters"]
    (field,) = [p for p in parameters if p["name"] == "field"]
    assert "pack" in field["schema"]["items"]["enum"]
    refused = problem(client.get("/v1/facets", params={"field": ""}), 422, "invalid_request")
    assert "cannot facet" in refused["detail"]


# -- audio files: ranges and HEAD ------------------------------------------------------------


def test_range_errors_are_416_problems(client: TestClient) -> None:
    url = f"/v1/items/{an_id(client)}/audio"
    size = len(client.get(url).content)
    for spec in (f"bytes={size + 10}-", "bytes=5-1", "bytes=abc"):
        response = client.get(url, headers={"Range": spec})
        problem(response, 416, "range_not_satisfiable")
        assert response.headers["content-range"] == f"bytes */{size}"


def test_a_range_in_an_unknown_unit_is_ignored(client: TestClient) -> None:
    url = f"/v1/items/{an_id(client)}/audio"
    whole = client.get(url)
    response = client.get(url, headers={"Range": "items=0-1"})
    assert response.status_code == 200 and response.content == whole.content


def test_head_of_an_audio_file(client: TestClient) -> None:
    url = f"/v1/items/{an_id(client)}/audio"
    size = len(client.get(url).content)
    head = client.head(url)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == size
    assert head.headers["accept-ranges"] == "bytes"
    part = client.head(url, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.headers["content-range"] == f"bytes 0-9/{size}"
    missing = client.head("/v1/items/00000000-0000-0000-0000-000000000000/audio")
    assert missing.status_code == 404 and missing.content == b""  # a HEAD answer has no body
    assert missing.headers["content-type"] == "application/problem+json"


# -- Qdrant's range spelling -----------------------------------------------------------------


def _bpms(client: TestClient, bpm: Any) -> set[float]:
    body = {"query": "loop", "top_k": 200, "filter": {"bpm": bpm}}
    return {h["bpm"] for h in ok(client.post("/v1/search/text", json=body))["hits"]}


def test_qdrant_range_spelling(client: TestClient) -> None:
    """The library's loops are at 88, 122, 128 and 174 BPM."""
    assert _bpms(client, {"gte": 122, "lte": 128}) == _bpms(client, "122-128") == {122, 128}
    assert _bpms(client, {"gt": 122, "lte": 128}) == {128}
    assert _bpms(client, {"gte": 122, "lt": 128}) == {122}
    assert _bpms(client, {"gt": 122}) == {128, 174}
    assert _bpms(client, {"lt": 122}) == {88}
    assert _bpms(client, {"gt": 121.9, "lt": 122.1}) == {122}


@pytest.mark.parametrize(
    "bpm",
    [
        {"min": 120, "gte": 121},
        {"gt": 120, "gte": 120},
        {"lt": 130, "max": 130},
        {"gt": 9, "lt": 9},
    ],
)
def test_contradictory_ranges_are_refused(client: TestClient, bpm: dict[str, float]) -> None:
    response = client.post("/v1/search/text", json={"query": "x", "filter": {"bpm": bpm}})
    assert "filter.bpm" in problem(response, 422, "validation_error")["detail"]


def test_the_page_still_uploads_with_the_body_guard(client: TestClient, library: Library) -> None:
    """The page sends multipart uploads with a filter part: the guard must let them through."""
    path = a_file(library)
    body = ok(
        client.post(
            "/v1/search/hybrid",
            files={"file": (path.name, io.BytesIO(path.read_bytes()))},
            data={"query": "kick", "alpha": "0.5", "filter": '{"bpm": {"gt": 0}}'},
        )
    )
    assert body["engine"] == "qdrant"
