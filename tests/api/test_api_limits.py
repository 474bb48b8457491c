"""Body, upload and filter-list limits: enforced while a request streams in (the server stops
reading at the limit and stays responsive), and told truthfully in the OpenAPI document.

On the real app with the tiny random-weight models; bodies are streamed through httpx's ASGI
transport, which counts how much of them the server pulled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import starlette.formparsers
from fastapi.testclient import TestClient

from ingest.synthetic import Library
from tests.support.api_fixtures import api_settings, copy_of, ok, opened, problem
from timbre.cli.wiring import build_app

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


# -- the OpenAPI document --------------------------------------------------------------------


def test_the_openapi_document_tells_the_truth(limited: TestClient) -> None:
    doc = limited.get("/openapi.json").json()
    schemas, paths = doc["components"]["schemas"], doc["paths"]
    assert "HTTPValidationError" not in schemas
    for route in ("/v1/search/audio", "/v1/search/hybrid"):
        body = paths[route]["post"]["requestBody"]
        model = "AudioSearchIn" if route.endswith("audio") else "HybridSearchIn"
        assert body["content"]["application/json"]["schema"]["$ref"].endswith(model)
        assert str(BODY_LIMIT) in body["description"]
        upload = paths[f"{route}/upload"]["post"]["requestBody"]
        form = upload["content"]["multipart/form-data"]
        assert "file" in schemas[form["schema"]["$ref"].rsplit("/", 1)[1]]["properties"]
        assert form["encoding"]["file"]["contentType"] == "audio/*"
        assert str(UPLOAD_LIMIT) in upload["description"]
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
