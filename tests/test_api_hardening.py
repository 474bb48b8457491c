"""Hostile and sloppy HTTP requests: each gets a specific 4xx problem body, never a 5xx.

One test per defect found by hand and by schemathesis (issue 10), on the real app with the
tiny random-weight models; bodies are streamed through httpx's ASGI transport where it matters
how much of them the server reads.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import starlette.formparsers
from fastapi.testclient import TestClient

from ingest.synthetic import Library
from tests.api_fixtures import api_settings, copy_of, ok, opened, problem
from timbre.cli.wiring import build_app

pytestmark = pytest.mark.filterwarnings("ignore::timbre.embedding.files.RandomWeightsWarning")

UPLOAD_LIMIT = 2_000_000  # above Starlette's 1 MB in-memory spool, so uploads reach the disk
BODY_LIMIT = 100_000
FILTER_VALUES = 8
CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def limited(
    library: Library, indexed_dir: Path, tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """An app with small body limits, over its own copy of the indexed library."""
    settings = api_settings(
        tiny_bundle,
        copy_of(indexed_dir, tmp_path_factory.mktemp("limited")),
        library,
        max_upload_bytes=UPLOAD_LIMIT,
        max_body_bytes=BODY_LIMIT,
        max_filter_values=FILTER_VALUES,
    )
    with opened(settings) as c:
        yield c


def an_id(client: TestClient) -> str:
    return ok(client.post("/v1/search/text", json={"query": "kick", "top_k": 1}))["hits"][0]["id"]


def a_file(library: Library) -> Path:
    return next(p for p in library.files if p.suffix == ".wav")


def stream(
    client: TestClient, path: str, chunks: Iterator[bytes], headers: dict[str, str]
) -> tuple[httpx.Response, int]:
    """POST a streamed (chunked) body; the bytes the server pulled before it answered too."""
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for chunk in chunks:
            pulled += len(chunk)
            yield chunk

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.post(path, content=body(), headers=headers)

    return asyncio.run(send()), pulled


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
    "body",
    [
        {"query": "kick", "offset": False},
        {"query": "kick", "top_k": True},
        {"query": "kick", "filter": {"bpm": {"min": True}}},
    ],
)
def test_a_boolean_is_not_a_number(client: TestClient, body: dict[str, object]) -> None:
    response = client.post("/v1/search/text", json=body)
    assert "not true or false" in problem(response, 422, "validation_error")["detail"]


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


# -- sizes -----------------------------------------------------------------------------------


class _RecordingSpool(starlette.formparsers.SpooledTemporaryFile):  # type: ignore[type-arg]
    """Starlette's real spool file, noting the largest it ever grew."""

    largest = 0

    def write(self, data: bytes) -> int:  # type: ignore[override]
        written = super().write(data)
        _RecordingSpool.largest = max(_RecordingSpool.largest, self.tell())
        return written


def _multipart(total_bytes: int, boundary: str = "xyzzy") -> Iterator[bytes]:
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    for _ in range(total_bytes // CHUNK):
        yield b"\0" * CHUNK
    yield f"\r\n--{boundary}--\r\n".encode()


def test_an_upload_is_refused_while_it_streams(
    limited: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", _RecordingSpool)
    _RecordingSpool.largest = 0
    response, pulled = stream(
        limited,
        "/v1/search/audio",
        _multipart(10 * UPLOAD_LIMIT),
        {"Content-Type": "multipart/form-data; boundary=xyzzy"},
    )
    assert str(UPLOAD_LIMIT) in problem(response, 413, "too_large")["detail"]
    assert pulled <= UPLOAD_LIMIT + CHUNK  # 413 as soon as the limit was passed
    assert 1_000_000 < _RecordingSpool.largest <= UPLOAD_LIMIT  # it reached the disk, no more


def test_a_declared_length_over_the_limit_is_refused_before_reading(limited: TestClient) -> None:
    response, pulled = stream(
        limited,
        "/v1/search/text",
        iter([b"{}"] * 1000),
        {"Content-Type": "application/json", "Content-Length": str(BODY_LIMIT + 1)},
    )
    problem(response, 413, "too_large")
    assert pulled == 0


def test_a_huge_json_body_is_cut_off_and_the_service_stays_responsive(
    limited: TestClient,
) -> None:
    """The issue's 23 MB body of 2 M genre values: refused after the first 100 kB, and a
    health probe sent while it streams is answered before the body has been refused."""
    head = b'{"query": "kick", "filter": {"genre": ['
    values = b'"rock",' * (CHUNK // 7)
    pulled = 0
    order: list[str] = []

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        yield head
        for i in range(23_000_000 // len(values)):
            pulled += len(values)
            if i == 1:
                await asyncio.sleep(0.2)  # room for the probe while the body is in flight
            yield values

    async def main() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=limited.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:

            async def big() -> httpx.Response:
                response = await c.post(
                    "/v1/search/text", content=body(), headers={"Content-Type": "application/json"}
                )
                order.append("big")
                return response

            async def probe() -> httpx.Response:
                await asyncio.sleep(0.05)
                response = await c.get("/healthz")
                order.append("probe")
                return response

            return await asyncio.gather(big(), probe())

    big, health = asyncio.run(main())
    problem(big, 413, "too_large")
    assert pulled <= BODY_LIMIT + len(values)
    assert health.status_code == 200 and order == ["probe", "big"]


def test_filter_lists_are_capped(limited: TestClient) -> None:
    many = [f"genre {i}" for i in range(FILTER_VALUES + 1)]
    body = {"query": "kick", "filter": {"genre": many}}
    found = problem(limited.post("/v1/search/text", json=body), 422, "invalid_request")
    assert "filter.genre" in found["detail"] and str(FILTER_VALUES) in found["detail"]
    ok(limited.post("/v1/search/text", json={**body, "filter": {"genre": many[:-1]}}))


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


# -- the OpenAPI document --------------------------------------------------------------------


def test_the_openapi_document_tells_the_truth(limited: TestClient) -> None:
    doc = limited.get("/openapi.json").json()
    schemas, paths = doc["components"]["schemas"], doc["paths"]
    assert "HTTPValidationError" not in schemas
    for route in ("/v1/search/audio", "/v1/search/hybrid"):
        body = paths[route]["post"]["requestBody"]["content"]
        model = "AudioSearchIn" if route.endswith("audio") else "HybridSearchIn"
        assert body["application/json"]["schema"]["$ref"].endswith(model)
        assert "file" in body["multipart/form-data"]["schema"]["properties"]
        assert str(UPLOAD_LIMIT) in paths[route]["post"]["requestBody"]["description"]
    text = paths["/v1/search/text"]["post"]
    for status in ("400", "413", "415", "422", "503"):
        content = text["responses"][status]["content"]
        assert content == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
    assert str(BODY_LIMIT) in text["requestBody"]["description"]
    ingest = paths["/v1/ingest"]["post"]
    assert {"403", "409"} <= set(ingest["responses"]) and "401" not in ingest["responses"]
    assert {} in ingest["security"]  # no key configured: the key is optional everywhere
    assert "416" in paths["/v1/items/{item_id}/audio"]["get"]["responses"]
    assert "head" in paths["/v1/items/{item_id}/audio"]
    top_k = schemas["TextSearchIn"]["properties"]["top_k"]["anyOf"][0]
    assert top_k["maximum"] == 200 and top_k["minimum"] == 1
    assert schemas["BatchSearchIn"]["properties"]["queries"]["maxItems"] == 64
    genre = schemas["FilterIn"]["properties"]["genre"]["anyOf"]
    assert {"type": "array", "items": {"type": "string"}, "maxItems": FILTER_VALUES} in genre
    schemes = doc["components"]["securitySchemes"]
    assert schemes["APIKeyHeader"] == {
        **schemes["APIKeyHeader"],
        "in": "header",
        "name": "X-API-Key",
    }
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert paths["/v1/stats"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ] == {"$ref": "#/components/schemas/StatsOut"}
    assert paths["/readyz"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ReadyOut"
    }


def test_the_openapi_document_follows_the_key_settings(
    library: Library, tiny_bundle: Path, tmp_path: Path
) -> None:
    """With a key for writes only, writes require it (401 documented) and reads do not."""
    settings = api_settings(tiny_bundle, tmp_path / "data", library, api_key="k")
    paths = build_app(settings).openapi()["paths"]
    ingest, search = paths["/v1/ingest"]["post"], paths["/v1/search/text"]["post"]
    assert ingest["security"] == [{"APIKeyHeader": []}, {"HTTPBearer": []}]
    assert "401" in ingest["responses"]
    assert {} in search["security"] and "401" not in search["responses"]
    settings = api_settings(
        tiny_bundle, tmp_path / "data", library, api_key="k", require_key_for_reads=True
    )
    search = build_app(settings).openapi()["paths"]["/v1/search/text"]["post"]
    assert {} not in search["security"] and "401" in search["responses"]


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
