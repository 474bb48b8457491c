"""The HTTP API through TestClient on a small indexed library (tiny random-weight models)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from ingest.synthetic import Library
from tests.api_fixtures import api_settings, copy_of, ok, opened, problem
from tests.audio_factory import tone, write
from timbre.cli.wiring import build_app
from timbre.musickey import normalize_key

pytestmark = pytest.mark.filterwarnings("ignore::timbre.embedding.files.RandomWeightsWarning")


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
                "/v1/search/audio", files={"file": (path.name, handle)}, data={"top_k": "5"}
            )
        )
    assert by_path["hits"][0]["path"] == str(path)
    assert [h["id"] for h in by_upload["hits"]] == [h["id"] for h in by_path["hits"]]


def test_upload_with_a_filter(client: TestClient, library: Library) -> None:
    path = next(p for p in library.files if "Kick" in p.name)
    with path.open("rb") as handle:
        body = ok(
            client.post(
                "/v1/search/audio",
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
    assert len(ids) == len(set(ids)) == 11
    assert all(h["instrument"] == "kick" for h in distinct["results"][0]["hits"])


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


# -- security --------------------------------------------------------------------------------


def test_api_key_guards_writes(
    library: Library, indexed_dir: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    settings = api_settings(
        tiny_bundle, copy_of(indexed_dir, tmp_path), library, api_key="s3cret-key"
    )
    with opened(settings) as c:
        problem(c.post("/v1/snapshot"), 401, "unauthorized")
        problem(c.post("/v1/snapshot", headers={"X-API-Key": "s3cret-kex"}), 401, "unauthorized")
        assert ok(c.post("/v1/snapshot", headers={"X-API-Key": "s3cret-key"}))["count"] > 0
        assert (
            ok(c.post("/v1/snapshot", headers={"Authorization": "Bearer s3cret-key"}))["count"] > 0
        )
        ok(c.post("/v1/search/text", json={"query": "kick"}))  # reads stay open by default


def test_api_key_can_guard_reads(
    library: Library, indexed_dir: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    settings = api_settings(
        tiny_bundle,
        copy_of(indexed_dir, tmp_path),
        library,
        api_key="k",
        require_key_for_reads=True,
    )
    with opened(settings) as c:
        problem(c.post("/v1/search/text", json={"query": "kick"}), 401, "unauthorized")
        ok(c.post("/v1/search/text", json={"query": "kick"}, headers={"X-API-Key": "k"}))
        assert c.get("/healthz").status_code == 200  # probes never need a key


def test_cors_is_off_by_default_and_configurable(
    client: TestClient, library: Library, indexed_dir: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    preflight = {"Origin": "https://daw.example", "Access-Control-Request-Method": "POST"}
    response = client.options("/v1/search/text", headers=preflight)
    assert "access-control-allow-origin" not in response.headers
    settings = api_settings(
        tiny_bundle, copy_of(indexed_dir, tmp_path), library, cors_origins=["https://daw.example"]
    )
    with opened(settings) as c:
        response = c.options("/v1/search/text", headers=preflight)
        assert response.headers["access-control-allow-origin"] == "https://daw.example"


# -- health, stats, metrics ------------------------------------------------------------------


def test_health_and_stats(client: TestClient, library: Library) -> None:
    assert ok(client.get("/healthz")) == {"status": "ok"}
    assert ok(client.get("/readyz"))["ready"] is True
    stats = ok(client.get("/v1/stats"))
    assert stats["store"]["count"] == len(library.files) == stats["snapshot"]["count"]
    assert stats["snapshot"]["freshness"]["is_current"] is True
    assert stats["random_weights"] is True
    assert stats["models"]["pipeline_version"] == stats["pipeline_version"]
    assert stats["precision"]["text"] == "fp32"  # auto on a CPU
    assert stats["runtime"]["text"] == "onnxruntime"  # auto on a CPU, once its export agreed
    assert stats["text_batches"]["queries"] >= stats["text_batches"]["calls"]


def test_metrics(client: TestClient) -> None:
    client.post("/v1/search/text", json={"query": "metrics probe"})
    client.post("/v1/search/text", json={"query": "metrics probe", "filter": {"kind": "loop"}})
    client.get("/v1/items/nope")
    text = client.get("/metrics").text
    assert (
        'timbre_request_seconds_count{engine="faiss",method="POST",route="/v1/search/text",status="200"}'
        in text
    )
    assert 'engine="qdrant"' in text
    assert 'timbre_embed_seconds_count{kind="text"}' in text
    assert 'timbre_errors_total{code="not_found"}' in text
    assert "timbre_model_queue_depth" in text


def test_readyz_waits_for_a_snapshot(library: Library, tiny_bundle: Path, tmp_path: Path) -> None:
    settings = api_settings(tiny_bundle, tmp_path / "empty", library)
    with opened(settings, wait_ready=False) as c:
        body = problem(c.get("/readyz"), 503, "unavailable")
        assert "snapshot" in body["detail"]
        # With no snapshot, unfiltered queries fall back to Qdrant (empty here).
        assert ok(c.post("/v1/search/text", json={"query": "kick"}))["engine"] == "qdrant"


def test_page_is_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<title>Timbre" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/docs").status_code == 200
    assert "/v1/search/hybrid" in client.get("/openapi.json").text


# -- freshness, hot swap, Qdrant down, ingest inside the service ------------------------------


def test_snapshot_hot_swap_under_concurrent_requests(
    library: Library, indexed_dir: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    settings = api_settings(tiny_bundle, copy_of(indexed_dir, tmp_path), library)
    with opened(settings) as c:
        first = ok(c.get("/v1/stats"))["snapshot"]["name"]
        errors: list[str] = []
        served = 0
        stop = threading.Event()

        def hammer(client: TestClient) -> None:
            nonlocal served
            while not stop.is_set():
                r = client.post("/v1/search/text", json={"query": "kick", "top_k": 5})
                if (
                    r.status_code != 200
                    or r.json()["engine"] != "faiss"
                    or len(r.json()["hits"]) != 5
                ):
                    errors.append(r.text)
                served += 1

        threads = [threading.Thread(target=hammer, args=(c,)) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            for _ in range(3):
                ok(c.post("/v1/snapshot"))
                time.sleep(0.3)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert not errors, errors[:3]
        assert served > 10
        last = ok(c.get("/v1/stats"))["snapshot"]["name"]
        assert int(last) == int(first) + 3


def test_qdrant_down_keeps_unfiltered_queries_answering(
    library: Library, indexed_dir: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    data = copy_of(indexed_dir, tmp_path)
    settings = api_settings(
        tiny_bundle,
        data,
        library,
        qdrant={"url": "http://127.0.0.1:9", "max_attempts": 1, "timeout_s": 2},
    )
    with TestClient(build_app(settings), raise_server_exceptions=False) as c:
        time.sleep(0.5)
        fast = ok(c.post("/v1/search/text", json={"query": "kick", "top_k": 5}))
        assert fast["engine"] == "faiss" and len(fast["hits"]) == 5
        down = problem(
            c.post("/v1/search/text", json={"query": "kick", "filter": {"kind": "loop"}}),
            503,
            "unavailable",
        )
        assert "store" in down["detail"]
        assert "store" in problem(c.get("/readyz"), 503, "unavailable")["detail"]
        assert "error" in ok(c.get("/v1/stats"))["store"]


def test_ingest_inside_the_service(
    library: Library, indexed_dir: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    data = copy_of(indexed_dir, tmp_path)
    settings = api_settings(tiny_bundle, data, library, api_key="k")
    new_folder = library.root / "New Arrivals"
    fresh = [
        write(new_folder / f"Perc_Shaker_{i}.wav", tone(24000, 0.3 + 0.1 * i, 900 + 50 * i), 24000)
        for i in range(3)
    ]
    try:
        with opened(settings) as c:
            key = {"X-API-Key": "k"}
            problem(c.post("/v1/ingest", json={"paths": [str(new_folder)]}), 401, "unauthorized")
            problem(
                c.post("/v1/ingest", json={"paths": ["/etc"]}, headers=key), 403, "forbidden_path"
            )
            job = ok(c.post("/v1/ingest", json={"paths": [str(new_folder)]}, headers=key), 202)
            deadline = time.monotonic() + 120
            while job["state"] == "running" and time.monotonic() < deadline:
                time.sleep(0.2)
                job = ok(c.get(f"/v1/ingest/{job['job_id']}"))
            assert job["state"] == "finished", job
            assert job["exit_code"] == 0 and job["summary"]["counts"]["indexed"] == 3
            assert job["progress"]["indexed"] == 3
            stats = ok(c.get("/v1/stats"))
            assert stats["store"]["count"] == stats["snapshot"]["count"] == len(library.files) + 3
            body = ok(
                c.post(
                    "/v1/search/text",
                    json={"query": "x", "filter": {"path_prefix": str(new_folder)}},
                )
            )
            assert {h["path"] for h in body["hits"]} == {str(p) for p in fresh}
            problem(c.get("/v1/ingest/unknown"), 404, "not_found")
    finally:
        shutil.rmtree(new_folder)
