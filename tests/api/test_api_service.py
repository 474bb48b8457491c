"""The HTTP API as a service: the API key, CORS, health, stats and metrics, readiness, snapshot
hot swaps, Qdrant down, and ingest inside the service.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

from fastapi.testclient import TestClient

from ingest.synthetic import Library
from tests.support.api_fixtures import api_settings, copy_of, ok, opened, problem
from tests.support.audio_factory import tone, write
from timbre.cli.wiring import build_app

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
