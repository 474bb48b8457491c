"""Collection exports at their edges: a rendition that cannot be made falls back to the
original (and the note says so), matched names stay within what file systems take, and a file
older than zip's 1980 epoch still goes in. On the shared synthetic library."""

from __future__ import annotations

import io
import os
import uuid
import zipfile
from pathlib import Path

from fastapi.testclient import TestClient

from tests.support.api_fixtures import first_hit, ok
from timbre.errors import InvalidRequestError
from timbre.fit import ProjectContext
from timbre.search.collections import (
    MAX_NAME_BYTES,
    CollectionsService,
    Opened,
    matched_name,
    zip_time,
)


def collection_of(client: TestClient, ids: list[str]) -> str:
    name = f"edge {uuid.uuid4().hex[:8]}"
    ok(client.post(f"/v1/collections/{name}/items", json={"ids": ids}))
    return name


def test_a_rendition_that_cannot_be_made_falls_back_to_the_original(
    client: TestClient,
) -> None:
    state = client.app.state  # type: ignore[attr-defined]

    def failing(item_id: str, bpm: float | None, semitones: int) -> Opened:
        raise InvalidRequestError("too long to stretch")

    service = CollectionsService(state.collections.db, state.collections.library, failing)
    loop = first_hit(client, "loop", kind="loop")
    name = collection_of(client, [loop["id"]])
    plan = service.plan_export(name, ProjectContext.of(loop["bpm"] * 1.05, None))
    assert plan.entries[0].match is not None  # it wanted matching
    archive = zipfile.ZipFile(io.BytesIO(b"".join(service.export_zip(plan))))
    original = Path(loop["path"])
    assert archive.read(f"{plan.folder}/{original.name}") == original.read_bytes()
    note = archive.read(f"{plan.folder}/MISSING.txt").decode()
    assert "Went in as the original" in note and "too long to stretch" in note
    assert "not in this export" not in note  # nothing is missing
    assert client.delete(f"/v1/collections/{name}").status_code == 204


def test_matched_names_stay_within_a_file_name_and_keep_their_suffix() -> None:
    long = "Ü" * 200 + ".flac"  # 400 bytes of stem in UTF-8
    name = matched_name(long, (124.0, -2))
    assert name.endswith(" (124 BPM, -2 st).wav")
    assert len((name[:-4] + " (99).wav").encode()) <= MAX_NAME_BYTES  # a clash's number too
    assert matched_name("Loop.wav", (None, 3)) == "Loop (+3 st).wav"


def test_a_file_older_than_1980_still_exports(client: TestClient) -> None:
    assert zip_time(1.0) == (1980, 1, 1, 0, 0, 0)
    loop = first_hit(client, "loop", kind="loop")
    path = Path(loop["path"])
    before = path.stat()
    name = collection_of(client, [loop["id"]])
    try:
        os.utime(path, (1.0, 1.0))  # as a Nix store keeps every file
        response = client.get(f"/v1/collections/{name}/export.zip")
        assert response.status_code == 200
        archive = zipfile.ZipFile(io.BytesIO(response.content))
        (info,) = archive.infolist()
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert archive.read(info) == path.read_bytes()
    finally:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert client.delete(f"/v1/collections/{name}").status_code == 204
