"""The HTTP API's items and their audio, and the requests it refuses (RFC 9457 problems):
invalid fields, paths outside the roots, upload limits, internal errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ingest.synthetic import Library
from tests.support.api_fixtures import api_settings, copy_of, ok, opened, problem
from tests.support.audio_factory import tone, write

# -- items and audio -------------------------------------------------------------------------


def test_item_and_its_audio_with_ranges(client: TestClient, library: Library) -> None:
    hit = ok(client.post("/v1/search/text", json={"query": "clap", "top_k": 1}))["hits"][0]
    item = ok(client.get(f"/v1/items/{hit['id']}"))
    assert item["path"] == hit["path"] and item["score"] is None
    data = Path(hit["path"]).read_bytes()
    whole = client.get(f"/v1/items/{hit['id']}/audio")
    assert whole.status_code == 200 and whole.content == data
    part = client.get(f"/v1/items/{hit['id']}/audio", headers={"Range": "bytes=10-49"})
    assert part.status_code == 206 and part.content == data[10:50]
    assert part.headers["content-range"] == f"bytes 10-49/{len(data)}"


def test_unknown_items(client: TestClient) -> None:
    problem(client.get("/v1/items/00000000-0000-0000-0000-000000000000"), 404, "not_found")
    problem(client.get("/v1/items/not-a-uuid/audio"), 404, "not_found")
    problem(
        client.post("/v1/search/audio", json={"id": "00000000-0000-0000-0000-000000000000"}),
        404,
        "not_found",
    )


# -- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"query": "kick", "top_k": 1000}, "top_k"),
        ({"query": "kick", "top_k": 0}, "top_k"),
        ({"query": "kick", "offset": 10**6}, "offset"),
        ({"query": ""}, "query"),
        ({"query": "kick", "filter": {"colour": "red"}}, "filter.colour"),
        ({"query": "kick", "filter": {"bpm": "fast"}}, "filter.bpm"),
        ({"query": "kick", "filter": {"bpm": "130-120"}}, "filter.bpm"),
        ({"query": "kick", "filter": {"key": "H minor"}}, "filter.key"),
        ({"query": "kick", "filter": {"kind": "oneshot"}}, "filter.kind"),
        ({"query": "kick", "filter": {"bpm_source": "guess"}}, "filter.bpm_source"),
    ],
)
def test_invalid_requests_name_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/search/text", json=body)
    assert response.status_code == 422
    problem_body = response.json()
    text = problem_body["detail"] + str(problem_body.get("errors", ""))
    assert field.rsplit(".", maxsplit=1)[-1] in text


def test_hybrid_needs_a_reference_and_a_sane_alpha(client: TestClient) -> None:
    assert client.post("/v1/search/hybrid", json={"query": "kick", "top_k": 3}).status_code == 422
    ref = ok(client.post("/v1/search/text", json={"query": "bass", "top_k": 1}))["hits"][0]["id"]
    response = client.post("/v1/search/hybrid", json={"query": "kick", "id": ref, "alpha": 1.5})
    assert response.status_code == 422 and "alpha" in response.text


def test_batch_limits(client: TestClient) -> None:
    too_many = [{"query": "kick"}] * 65
    problem(client.post("/v1/search/batch", json={"queries": too_many}), 422, "invalid_request")


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "{root}/../../../etc/passwd", "{root}/does/not/exist.wav", "relative/file.wav"],
)
def test_paths_outside_the_roots_are_forbidden(
    client: TestClient, library: Library, path: str
) -> None:
    problem(
        client.post("/v1/search/audio", json={"path": path.format(root=library.root)}),
        403,
        "forbidden_path",
    )


def test_a_symlink_out_of_the_roots_is_forbidden(
    client: TestClient, library: Library, tmp_path: Path
) -> None:
    outside = write(tmp_path / "secret.wav", tone(24000, 0.5), 24000)
    link = library.root / "sneaky.wav"
    link.symlink_to(outside)
    try:
        problem(client.post("/v1/search/audio", json={"path": str(link)}), 403, "forbidden_path")
    finally:
        link.unlink()


def test_upload_limits(
    client: TestClient, library: Library, tiny_bundle: Path, indexed_dir: Path, tmp_path: Path
) -> None:
    problem(
        client.post("/v1/search/audio", files={"file": ("x.wav", b"not audio at all")}),
        422,
        "not_audio",
    )
    problem(client.post("/v1/search/audio", files={"file": ("x.wav", b"")}), 422, "empty")
    settings = api_settings(
        tiny_bundle,
        copy_of(indexed_dir, tmp_path),
        library,
        max_upload_bytes=100_000,
        max_upload_duration_s=1.0,
    )
    long = write(tmp_path / "long.wav", tone(24000, 3.0), 24000)  # 144 kB > 100 kB
    short_but_long = write(tmp_path / "long.flac", tone(8000, 2.0), 8000)  # small file, 2 s > 1 s
    with opened(settings) as c:
        problem(
            c.post("/v1/search/audio", files={"file": ("long.wav", long.read_bytes())}),
            413,
            "too_large",
        )
        assert short_but_long.stat().st_size < 100_000
        problem(
            c.post("/v1/search/audio", files={"file": ("long.flac", short_but_long.read_bytes())}),
            422,
            "too_long",
        )


def test_internal_errors_do_not_leak(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    service = client.app.state.service  # type: ignore[attr-defined]

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals at /srv/private")

    monkeypatch.setattr(service, "stats", boom)
    body = problem(client.get("/v1/stats"), 500, "internal_error")
    assert "secret" not in body["detail"]


def test_a_numeric_string_is_not_a_range_bound(client: TestClient) -> None:
    # Found by the schema fuzzer: {"bpm": {"gt": "5"}} was read as 5 where the schema says number.
    body = {"query": "kick", "filter": {"bpm": {"gt": "120"}}}
    response = client.post("/v1/search/text", json=body)
    found = problem(response, 422, "validation_error")["detail"]
    assert found == "filter.bpm.gt: Input should be a valid number"
    response = client.get(
        "/v1/facets", params={"field": "pack", "filter": '{"bpm": {"gte": "120"}}'}
    )
    found = problem(response, 422, "validation_error")["detail"]
    assert found == "bpm.gte: Input should be a valid number"
    assert ok(client.get("/v1/facets", params={"field": "pack", "filter": '{"bpm": {"gte": 120}}'}))
