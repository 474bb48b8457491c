"""A collection exported for a project: each loop off the project's tempo or key goes in as
its matched rendition (the one the page auditions), named as the page names it; one-shots
and samples already on the project go in as they are. On the shared synthetic library."""

from __future__ import annotations

import io
import uuid
import zipfile
from pathlib import Path
from typing import Any

import soundfile as sf
from fastapi.testclient import TestClient

from tests.support.api_fixtures import first_hit, ok, problem


def test_a_matched_export_plays_each_loop_at_the_project_tempo(client: TestClient) -> None:
    loop = first_hit(client, "drum loop", kind="loop", instrument="drums")
    kick = first_hit(client, "kick", kind="one_shot", instrument="kick")
    assert loop["bpm"] and kick["bpm"] is None
    name = f"matched {uuid.uuid4().hex[:8]}"
    ok(client.post(f"/v1/collections/{name}/items", json={"ids": [loop["id"], kick["id"]]}))
    project = round(loop["bpm"] * 1.05, 2)  # 5 % faster: a stretch, within half/double time
    plain = zipfile.ZipFile(io.BytesIO(ok_zip(client, name, {})))
    matched = zipfile.ZipFile(io.BytesIO(ok_zip(client, name, {"bpm": project})))
    loop_name, kick_name = Path(loop["path"]).name, Path(kick["path"]).name
    assert plain.namelist() == [f"{name}/{loop_name}", f"{name}/{kick_name}"]
    stretched = f"{name}/{loop_name.rsplit('.', 1)[0]} ({project:g} BPM).wav"
    assert matched.namelist() == [stretched, f"{name}/{kick_name}"]
    # the one-shot has no tempo to match: the original bytes
    assert matched.read(f"{name}/{kick_name}") == Path(kick["path"]).read_bytes()
    before = sf.info(io.BytesIO(plain.read(f"{name}/{loop_name}")))
    after = sf.info(io.BytesIO(matched.read(stretched)))
    ratio = loop["bpm"] / project  # played faster: shorter by the tempo ratio
    assert abs(after.duration / before.duration - ratio) < 0.01, (after.duration, before.duration)
    # the key alone: a loop in another key is transposed, named by its semitones
    keyed = first_hit(client, "bass loop", kind="loop", instrument="bass")
    assert keyed["key"], keyed
    ok(client.post(f"/v1/collections/{name}/items", json={"ids": [keyed["id"]]}))
    for key in ("F#", "C", "Eb"):
        semitones = fit_to(client, keyed, key)["semitones"]
        if semitones:
            break
    assert semitones
    shifted = zipfile.ZipFile(io.BytesIO(ok_zip(client, name, {"key": key})))
    keyed_name = Path(keyed["path"]).name.rsplit(".", 1)[0]
    member = f"{name}/{keyed_name} ({semitones:+d} st).wav"
    assert member in shifted.namelist(), shifted.namelist()
    original = sf.info(io.BytesIO(Path(keyed["path"]).read_bytes()))
    assert abs(sf.info(io.BytesIO(shifted.read(member))).duration - original.duration) < 0.01
    assert client.delete(f"/v1/collections/{name}").status_code == 204


def fit_to(client: TestClient, hit: dict[str, Any], key: str) -> dict[str, Any]:
    """How ``hit`` fits a project in ``key``, as a search reports it."""
    body = {"id": hit["id"], "top_k": 50, "context": {"key": key}}
    found = ok(client.post("/v1/search/audio", json=body))["hits"]
    fit: dict[str, Any] = next(h["fit"] for h in found if h["id"] == hit["id"])
    return fit


def ok_zip(client: TestClient, name: str, params: dict[str, Any]) -> bytes:
    response = client.get(f"/v1/collections/{name}/export.zip", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["x-timbre-missing"] == "0"
    assert zipfile.ZipFile(io.BytesIO(response.content)).testzip() is None
    return response.content


def test_a_bad_project_is_a_422_and_names_the_parameter(client: TestClient) -> None:
    name = f"bad {uuid.uuid4().hex[:8]}"
    ok(client.post("/v1/collections", json={"name": name}), 201)
    for params, field in (({"bpm": 0}, "bpm"), ({"bpm": "fast"}, "bpm"), ({"key": "H"}, "key")):
        body = problem(
            client.get(f"/v1/collections/{name}/export.zip", params=params), 422, "validation_error"
        )
        assert field in body["detail"], body
    problem(client.get("/v1/collections/nobody-here/export.zip?bpm=120"), 404, "not_found")
    assert client.delete(f"/v1/collections/{name}").status_code == 204
