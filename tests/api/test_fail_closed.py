"""Files are read only inside the library roots and only while they hold the indexed sample.

Every route that reads a file is tried against the fault it must refuse: a symlink leading
out of the roots (a copy of the sample standing in for /etc/shadow, so only the roots check
can refuse it), a service without roots, a roots file that cannot be read, and a sample
replaced in place by a hard link to a text file.
"""

from __future__ import annotations

import io
import logging
import shutil
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ingest.synthetic import Library, make_library
from tests.support.api_fixtures import READY_WITHIN_S, copy_of, ok, problem, until_ready
from tests.support.ingest_helpers import ingest, job_settings
from timbre.cli.wiring import build_app
from timbre.library_roots import ROOTS_FILE, RecordedRoots, read_recorded_roots, record_roots
from timbre.settings import load_settings


@pytest.fixture(scope="module")
def own_library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    """A library of this module's own: its tests replace files in it."""
    return make_library(
        tmp_path_factory.mktemp("lib") / "Samples",
        one_shots_per_pack=2,
        loops_per_pack=0,
        broken=False,
    )


@pytest.fixture(scope="module")
def own_data(own_library: Library, tiny_bundle: Path, audio_embedder, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    data = tmp_path_factory.mktemp("data")
    ingest(job_settings(tiny_bundle, data), audio_embedder, [own_library.root])
    return data


@contextmanager
def app_on(
    bundle: Path, data: Path, roots: list[Path], *, wait_ready: bool = True
) -> Iterator[TestClient]:
    settings = load_settings(
        data_dir=data,
        models={"bundle": bundle, "threads": 2},
        api={"library_roots": [str(r) for r in roots], "snapshot_poll_s": 0.2},
    )
    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        if wait_ready:
            until_ready(client)
        yield client


def items_by_path(client: TestClient) -> dict[str, dict[str, Any]]:
    hits = ok(client.post("/v1/search/text", json={"query": "sound", "top_k": 50}))["hits"]
    return {h["path"]: h for h in hits}


def zipped(client: TestClient, collection: str, ids: list[str]) -> tuple[dict[str, bytes], str]:
    """The files of an export of ``ids`` (by name) and its note of what was left out."""
    ok(client.post(f"/v1/collections/{collection}/items", json={"ids": ids}))
    response = client.get(f"/v1/collections/{collection}/export.zip")
    assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
        files = {Path(n).name: zf.read(n) for n in zf.namelist()}
    return files, files.pop("MISSING.txt", b"").decode()


def file_routes(client: TestClient, item_id: str, path: str) -> dict[str, Any]:
    """The response of every route that reads a file, for one item (or its path)."""
    return {
        "audio": client.get(f"/v1/items/{item_id}/audio"),
        "rendition": client.get(f"/v1/items/{item_id}/audio", params={"rendition": "wav"}),
        "search by path": client.post("/v1/search/audio", json={"path": path}),
        "hybrid by path": client.post("/v1/search/hybrid", json={"path": path, "query": "kick"}),
        "ingest": client.post("/v1/ingest", json={"paths": [path], "dry_run": True}),
    }


def test_a_symlink_out_of_the_roots_is_refused_on_every_route(
    own_library: Library, own_data: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    with app_on(tiny_bundle, own_data, [own_library.root]) as client:
        hits = items_by_path(client)
        path = sorted(p for p in hits if p.endswith(".wav"))[0]
        item_id = hits[path]["id"]
        # Outside the roots, the very bytes that were indexed: only the roots check can refuse.
        secret = tmp_path / "shadow"
        shutil.copyfile(path, secret)
        Path(path).unlink()
        Path(path).symlink_to(secret)
        for route, response in file_routes(client, item_id, path).items():
            assert response.status_code == 403, (route, response.text)
            assert problem(response, 403, "forbidden_path")
            assert str(secret) not in response.text, route
        files, note = zipped(client, "escape", [item_id])
        assert files == {} and item_id in note and "outside the library roots" in note


def test_without_roots_nothing_is_served_and_readyz_says_why(
    own_library: Library, own_data: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    data = copy_of(own_data, tmp_path)
    (data / ROOTS_FILE).unlink()  # no recorded roots, none configured: nothing to serve
    with app_on(tiny_bundle, data, []) as client:
        hits = items_by_path(client)
        path = sorted(hits)[0]
        item_id = hits[path]["id"]
        for route, response in file_routes(client, item_id, path).items():
            body = problem(response, 403, "forbidden_path")
            assert "no library roots" in body["detail"], route
        files, note = zipped(client, "none", [item_id])
        assert files == {} and "no library roots" in note
        ready = ok(client.get("/readyz"))  # still ready for searches, and says why
        assert ready["checks"]["library_roots"] is False
        assert any("no library roots" in r for r in ready["reasons"])


def test_an_unreadable_roots_file_is_a_reported_problem_not_an_empty_list(
    own_data: Path, tiny_bundle: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = copy_of(own_data, tmp_path)
    (data / ROOTS_FILE).write_text('{"roots": ["/lib', encoding="utf-8")  # cut short
    with caplog.at_level(logging.ERROR), app_on(tiny_bundle, data, [], wait_ready=False) as c:
        deadline = time.monotonic() + READY_WITHIN_S
        while "loading" in (reply := c.get("/readyz")).text and time.monotonic() < deadline:
            time.sleep(0.1)  # the models load; the roots problem then stays the one reason
        body = problem(reply, 503, "unavailable")
        assert ROOTS_FILE in body["detail"] and "not valid JSON" in body["detail"]
        hits = ok(c.post("/v1/search/text", json={"query": "kick", "top_k": 1}))["hits"]
        refused = problem(c.get(f"/v1/items/{hits[0]['id']}/audio"), 403, "forbidden_path")
        assert ROOTS_FILE in refused["detail"]
    assert any(ROOTS_FILE in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


def test_a_sample_replaced_in_place_is_reported_not_served(
    own_library: Library, own_data: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    with app_on(tiny_bundle, own_data, [own_library.root]) as client:
        hits = items_by_path(client)
        changed_path, kept_path = sorted(p for p in hits if p.endswith((".aiff", ".flac")))[:2]
        changed, kept = hits[changed_path]["id"], hits[kept_path]["id"]
        text = tmp_path / "notes.txt"
        text.write_text("not a sample\n" * 100, encoding="utf-8")
        Path(changed_path).unlink()
        Path(changed_path).hardlink_to(text)  # same path, inside the roots, other content
        for route in ("audio", "rendition"):
            response = file_routes(client, changed, changed_path)[route]
            assert (
                "no longer holds the indexed sample"
                in problem(response, 409, "content_changed")["detail"]
            ), route
        files, note = zipped(client, "replaced", [changed, kept])
        assert list(files) == [Path(kept_path).name]
        assert files[Path(kept_path).name] == Path(kept_path).read_bytes()
        assert changed in note and "no longer holds the indexed sample" in note
        served = client.get(f"/v1/items/{kept}/audio")
        assert served.status_code == 200 and served.content == Path(kept_path).read_bytes()


def test_an_export_leaves_out_a_file_replaced_after_it_was_planned(
    own_library: Library, own_data: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    with app_on(tiny_bundle, own_data, [own_library.root]) as client:
        hits = items_by_path(client)
        path = sorted(p for p in hits if p.endswith(".mp3"))[0]
        item_id = hits[path]["id"]
        ok(client.post("/v1/collections/late/items", json={"ids": [item_id]}))
        collections = client.app.state.collections  # type: ignore[attr-defined]
        plan = collections.plan_export("late")
        assert [e.id for e in plan.entries] == [item_id]
        Path(path).write_bytes(b"ID3" + b"\0" * 64)  # rewritten between the plan and the zip
        out = io.BytesIO(b"".join(collections.export_zip(plan)))
        with zipfile.ZipFile(out) as zf:
            names = [Path(n).name for n in zf.namelist()]
            note = zf.read(next(n for n in zf.namelist() if n.endswith("MISSING.txt"))).decode()
        assert names == ["MISSING.txt"] and item_id in note and "content changed" in note


def test_ingest_moves_a_broken_roots_file_aside_before_recording(tmp_path: Path) -> None:
    data, library = tmp_path / "data", tmp_path / "Samples"
    library.mkdir()
    data.mkdir()
    (data / ROOTS_FILE).write_bytes(b"\xff\xfe not json")
    assert read_recorded_roots(data).problem is not None
    record_roots(data, [library])
    assert read_recorded_roots(data) == RecordedRoots([library.resolve()])
    (aside,) = data.glob(f"{ROOTS_FILE}.corrupt-*")
    assert aside.read_bytes() == b"\xff\xfe not json"  # kept for a person to read


def test_the_roots_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """It says which folders the service may serve: like the model-bundle record and the
    feature cache, it is written 0600, whatever the umask."""
    record_roots(tmp_path / "data", [tmp_path / "library"])
    record_roots(tmp_path / "data", [tmp_path / "more"])  # replaced: still private
    roots_file = tmp_path / "data" / ROOTS_FILE
    assert roots_file.stat().st_mode & 0o777 == 0o600
    assert read_recorded_roots(tmp_path / "data").roots == [tmp_path / "library", tmp_path / "more"]
    assert [p.name for p in roots_file.parent.iterdir()] == [ROOTS_FILE]  # no temp file left
