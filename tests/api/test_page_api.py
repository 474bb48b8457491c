"""What the sample browser asks of the API: totals, waveform peaks, WAV renditions, browsing,
full payloads, favourites and collections with their zip export, through TestClient on a small
indexed library (tiny random-weight models)."""

from __future__ import annotations

import hashlib
import io
import shutil
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from ingest.synthetic import Library, make_library
from tests.support.api_fixtures import until_ready
from tests.support.ingest_helpers import ingest, job_settings
from timbre.audio.decode import decode_file
from timbre.audio.peaks import PEAK_BUCKETS, compute_peaks, encode_peaks
from timbre.cli.wiring import build_app
from timbre.collections_db import Collections
from timbre.errors import NotFoundError
from timbre.search.media import MediaService
from timbre.settings import load_settings

KEY = "s3cret-key"


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    return make_library(
        tmp_path_factory.mktemp("lib") / "Samples",
        one_shots_per_pack=6,
        loops_per_pack=1,
        loop_bars=(1,),
        broken=False,
    )


@pytest.fixture(scope="module")
def indexed(library: Library, tiny_bundle: Path, audio_embedder, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    data = tmp_path_factory.mktemp("data")
    ingest(job_settings(tiny_bundle, data), audio_embedder, [library.root])
    return data


def _client(bundle: Path, data: Path, library: Library, **api: Any) -> Iterator[TestClient]:
    settings = load_settings(
        data_dir=data,
        models={"bundle": bundle, "threads": 2},
        api={"library_roots": [str(library.root)], **api},
    )
    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        until_ready(client)
        yield client


@pytest.fixture(scope="module")
def client(library: Library, indexed: Path, tiny_bundle: Path) -> Iterator[TestClient]:
    yield from _client(tiny_bundle, indexed, library)


@pytest.fixture(scope="module")
def items(client: TestClient) -> list[dict[str, Any]]:
    """Every indexed sample, in path order."""
    body = ok(client.post("/v1/browse", json={"top_k": 200}))
    assert body["total"] == len(body["hits"])
    return body["hits"]


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if status != 204 else None


def _of_format(items: list[dict[str, Any]], fmt: str) -> dict[str, Any]:
    return next(h for h in items if h["format"] == fmt)


# -- totals and browsing ----------------------------------------------------------------------


def test_search_reports_the_total_it_could_return(
    client: TestClient, items: list[dict[str, Any]], library: Library
) -> None:
    body = ok(client.post("/v1/search/text", json={"query": "kick", "top_k": 3}))
    assert body["total"] == len(library.files) == len(items)
    pack = "Deep House Grooves"
    body = ok(
        client.post("/v1/search/text", json={"query": "kick", "top_k": 3, "filter": {"pack": pack}})
    )
    assert body["engine"] == "qdrant"
    assert body["total"] == sum(1 for e in library.files.values() if e.pack == pack)


def test_browse_lists_a_folder_in_path_order_with_paging(
    client: TestClient, library: Library
) -> None:
    folder = library.root / "Techno Essentials Vol 1" / "One Shots"
    expected = sorted((str(p) for p in library.files if p.is_relative_to(folder)), key=str.casefold)
    first = ok(client.post("/v1/browse", json={"filter": {"path_prefix": str(folder)}, "top_k": 4}))
    rest = ok(
        client.post(
            "/v1/browse", json={"filter": {"path_prefix": str(folder)}, "top_k": 50, "offset": 4}
        )
    )
    assert first["total"] == len(expected)
    assert [h["path"] for h in first["hits"] + rest["hits"]] == expected
    assert all(h["score"] is None for h in first["hits"])


def test_folders_list_the_tree_one_level_at_a_time_with_counts(
    client: TestClient, library: Library
) -> None:
    def under(folder: Path) -> int:
        return sum(1 for p in library.files if p.is_relative_to(folder))

    top = ok(client.get("/v1/folders"))
    # One library root: the top lists its packs, and "up" leads nowhere.
    packs = sorted({p.relative_to(library.root).parts[0] for p in library.files}, key=str.casefold)
    assert [f["name"] for f in top["folders"]] == packs
    assert top["under"] is None and top["parent"] is None
    assert top["total"] == len(library.files)
    for folder in top["folders"]:
        assert folder["count"] == under(Path(folder["path"]))
    pack = Path(top["folders"][0]["path"])
    inside = ok(client.get("/v1/folders", params={"under": str(pack)}))
    assert inside["under"] == str(pack) and inside["parent"] is None  # its parent is the top
    assert inside["total"] == under(pack)
    subs = sorted(
        {
            pack / p.relative_to(pack).parts[0]
            for p in library.files
            if p.parent.is_relative_to(pack) and p.parent != pack
        },
        key=str,
    )
    assert subs
    assert sorted(Path(f["path"]) for f in inside["folders"]) == subs
    assert sum(f["count"] for f in inside["folders"]) <= inside["total"]
    deeper = ok(client.get("/v1/folders", params={"under": str(subs[0])}))
    assert deeper["parent"] == str(pack) and deeper["name"] == subs[0].name
    assert deeper["total"] == under(subs[0])
    assert all(Path(f["path"]).parent == subs[0] for f in deeper["folders"])
    # A folder outside the library holds nothing.
    empty = ok(client.get("/v1/folders", params={"under": "/nowhere/at/all"}))
    assert empty["folders"] == [] and empty["total"] == 0


def test_payload_holds_every_stored_field(client: TestClient, items: list[dict[str, Any]]) -> None:
    body = ok(client.get(f"/v1/items/{items[0]['id']}/payload"))
    assert {"model", "pipeline_version", "paths", "content_sha256", "format"} <= set(
        body["payload"]
    )
    assert not {"dirs", "genre_norm", "key_norm", "pack_norm"} & set(body["payload"])
    assert body["audio_url"].endswith(f"/v1/items/{items[0]['id']}/audio")
    assert client.get(f"/v1/items/{uuid.uuid4()}/payload").status_code == 404


def test_favicon(client: TestClient) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")


# -- peaks --------------------------------------------------------------------------------


def test_an_indexed_sample_serves_the_peaks_ingest_stored(
    client: TestClient, items: list[dict[str, Any]]
) -> None:
    hit = _of_format(items, "flac")
    first = ok(client.get(f"/v1/items/{hit['id']}/peaks"))
    assert first["source"] == "payload" and first["buckets"] == PEAK_BUCKETS
    assert max(first["peaks"]) > 100  # the generator writes clips at 0.8 of full scale
    assert first["duration_s"] == pytest.approx(hit["duration_s"])


def test_peaks_are_computed_from_the_file_then_cached(
    items: list[dict[str, Any]], tmp_path: Path
) -> None:
    """A point indexed before ingest stored peaks: computed once from its file, then cached."""
    hit = _of_format(items, "flac")
    payload = {k: v for k, v in hit.items() if k != "peaks"}
    media = MediaService(
        _Items(Path(hit["path"]), payload),
        tmp_path / "cache",
        max_file_bytes=1 << 30,
        max_duration_s=60,
        rendition_cache_bytes=1 << 20,
    )
    first, again = media.peaks("a"), media.peaks("a")
    assert first.source == "computed" and again.source == "cache"
    assert first.peaks.tolist() == again.peaks.tolist() and len(first.peaks) == PEAK_BUCKETS
    rate = sf.info(hit["path"]).samplerate
    decoded = decode_file(
        hit["path"], sample_rate=rate, max_duration_s=60, max_file_bytes=1 << 30
    ).samples
    assert first.peaks.tolist() == compute_peaks(decoded).tolist()
    assert (tmp_path / "cache" / "peaks" / f"{hit['content_sha256']}.v1.u8").is_file()


def test_peaks_of_unknown_items_are_404(client: TestClient) -> None:
    assert client.get(f"/v1/items/{uuid.uuid4()}/peaks").status_code == 404
    assert client.get("/v1/items/not-a-uuid/peaks").status_code == 404


class _Items:
    """The two calls MediaService makes of the search service, over one real file."""

    def __init__(self, path: Path, payload: dict[str, Any]) -> None:
        self.path, self.payload = path, payload

    def item(self, item_id: str) -> dict[str, Any]:
        if item_id != "a":
            raise NotFoundError(item_id)
        return self.payload

    def item_file(self, item_id: str) -> Path:
        self.item(item_id)
        return self.path


def test_peaks_stored_in_the_payload_win_and_the_file_is_not_read(tmp_path: Path) -> None:
    stored = np.arange(PEAK_BUCKETS, dtype=np.uint8)
    media = MediaService(
        _Items(tmp_path / "absent.wav", {"peaks": encode_peaks(stored), "duration_s": 1.5}),
        tmp_path / "cache",
        max_file_bytes=1 << 20,
        max_duration_s=60,
        rendition_cache_bytes=1 << 20,
    )
    result = media.peaks("a")
    assert result.source == "payload" and result.duration_s == 1.5
    assert result.peaks.tolist() == stored.tolist()


# -- renditions ---------------------------------------------------------------------------


def test_aiff_gets_a_wav_rendition_with_the_same_audio_and_ranges(
    client: TestClient, items: list[dict[str, Any]], indexed: Path
) -> None:
    hit = _of_format(items, "aiff")
    response = client.get(f"/v1/items/{hit['id']}/audio", params={"rendition": "wav"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    assert response.content[:4] == b"RIFF" and response.content[8:12] == b"WAVE"
    wav, wav_rate = sf.read(io.BytesIO(response.content), dtype="int16", always_2d=True)
    aiff, aiff_rate = sf.read(hit["path"], dtype="int16", always_2d=True)
    assert wav_rate == aiff_rate and np.array_equal(wav, aiff)  # PCM_16 stays bit-exact
    part = client.get(
        f"/v1/items/{hit['id']}/audio",
        params={"rendition": "wav"},
        headers={"Range": "bytes=44-99"},
    )
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 44-99/{len(response.content)}"
    assert part.content == response.content[44:100]
    sha = hashlib.sha256(Path(hit["path"]).read_bytes()).hexdigest()
    assert (indexed / "cache" / "renditions" / f"{sha}.wav").is_file()
    # The original is still what the plain URL serves (drags and exports deliver it).
    original = client.get(f"/v1/items/{hit['id']}/audio")
    assert original.content == Path(hit["path"]).read_bytes()
    bad = client.get(f"/v1/items/{hit['id']}/audio", params={"rendition": "mp4"})
    assert bad.status_code == 422


def test_a_changed_file_gets_a_new_rendition_and_the_budget_evicts_old_ones(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.aiff"
    sf.write(path, np.zeros(4800, np.float32), 48000, format="AIFF", subtype="PCM_24")
    media = MediaService(
        _Items(path, {"format": "aiff"}),
        tmp_path / "cache",
        max_file_bytes=1 << 20,
        max_duration_s=60,
        rendition_cache_bytes=0,  # keep only the one just made
    )
    first = media.wav_rendition("a")
    first.close()
    assert first.name == "a.wav" and sf.info(first.path).subtype == "PCM_24"
    time.sleep(0.01)
    sf.write(path, np.full(4800, 0.5, np.float32), 48000, format="AIFF", subtype="PCM_24")
    second = media.wav_rendition("a")
    second.close()
    assert second.path != first.path and not first.path.exists()
    assert sf.read(second.path)[0][0] == pytest.approx(0.5, abs=1e-6)


# -- collections --------------------------------------------------------------------------


def test_collections_create_add_remove_delete(
    client: TestClient, items: list[dict[str, Any]]
) -> None:
    listing = ok(client.get("/v1/collections"))["collections"]
    assert listing[0]["name"] == "favourites"
    created = ok(client.post("/v1/collections", json={"name": "Dark Kicks"}), 201)
    assert created["count"] == 0
    assert client.post("/v1/collections", json={"name": "dark kicks"}).status_code == 409
    ids = [items[0]["id"], items[1]["id"]]
    body = ok(client.post("/v1/collections/Dark Kicks/items", json={"ids": ids}))
    assert body["count"] == 2 and [i["id"] for i in body["items"]] == ids
    assert body["items"][0]["path"] == items[0]["path"] and body["items"][0]["audio_url"]
    assert "score" not in body["items"][0] or body["items"][0]["score"] is None
    marks = ok(client.get("/v1/memberships", params={"id": [*ids, items[2]["id"]]}))
    assert marks["memberships"] == {ids[0]: ["Dark Kicks"], ids[1]: ["Dark Kicks"]}
    body = ok(client.delete(f"/v1/collections/Dark Kicks/items/{ids[0]}"))
    assert [i["id"] for i in body["items"]] == [ids[1]]
    # Adding to a collection that does not exist creates it; unknown ids add nothing.
    ok(client.post("/v1/collections/Pads/items", json={"ids": [ids[1]]}))
    missing = client.post("/v1/collections/Pads/items", json={"ids": [str(uuid.uuid4())]})
    assert missing.status_code == 404
    assert ok(client.get("/v1/collections/Pads"))["count"] == 1
    ok(client.delete("/v1/collections/Pads"), 204)
    assert client.get("/v1/collections/Pads").status_code == 404
    assert client.delete("/v1/collections/favourites").status_code == 409
    assert client.post("/v1/collections", json={"name": "a/b"}).status_code == 422
    ok(client.delete("/v1/collections/Dark Kicks"), 204)
    # An id that is no UUID is not indexed (found by the schemathesis run as a 500).
    bad = client.post("/v1/collections/Odd/items", json={"ids": [items[0]["id"], "not-a-uuid"]})
    assert bad.status_code == 404 and "not-a-uuid" in bad.json()["detail"]
    assert client.get("/v1/collections/Odd").status_code == 404  # nothing was added
    ok(client.delete("/v1/collections/favourites/items/not-a-uuid"))  # in none: nothing to do
    assert ok(client.get("/v1/memberships", params={"id": ["0"]})) == {"memberships": {}}
    # Names the store refuses are refused by the schema too (422), in bodies and paths alike.
    for name in ("p\x12", "   ", "\u3000"):
        assert client.post("/v1/collections", json={"name": name}).status_code == 422
        assert client.get(f"/v1/collections/{quote(name)}").status_code == 422
    # One path, a read and a write route: a 405 names both methods.
    refused = client.request("PUT", "/v1/collections")
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, POST"


def test_an_item_no_longer_indexed_is_shown_missing(
    client: TestClient, items: list[dict[str, Any]], indexed: Path
) -> None:
    gone = str(uuid.uuid4())
    db = Collections.in_data_dir(indexed)  # a second connection, as `timbre mcp` would hold
    try:
        db.add("Ghosts", [items[0]["id"], gone], path_hints=[items[0]["path"], "/old/clap.wav"])
    finally:
        db.close()
    body = ok(client.get("/v1/collections/Ghosts"))
    assert [i["missing"] for i in body["items"]] == [False, True]
    assert body["items"][1]["path_hint"] == "/old/clap.wav"
    assert body["items"][1]["audio_url"] is None
    archive = client.get("/v1/collections/Ghosts/export.zip")
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    assert names == [f"Ghosts/{Path(items[0]['path']).name}", "Ghosts/MISSING.txt"]
    ok(client.delete("/v1/collections/Ghosts"), 204)


def test_export_zip_holds_the_original_files_with_clashes_renamed(
    client: TestClient, items: list[dict[str, Any]]
) -> None:
    by_name: dict[str, list[dict[str, Any]]] = {}
    for hit in items:
        by_name.setdefault(Path(hit["path"]).name.casefold(), []).append(hit)
    twins = next(group for group in by_name.values() if len(group) >= 2)[:2]
    chosen = [*twins, _of_format(items, "mp3")]
    name_url = quote("Für: DAW?")
    ok(client.post(f"/v1/collections/{name_url}/items", json={"ids": [h["id"] for h in chosen]}))
    response = client.get(f"/v1/collections/{name_url}/export.zip")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert "filename*=UTF-8''F%C3%BCr_%20DAW_.zip" in response.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None
    name = Path(twins[0]["path"]).name
    stem, ext = name.rsplit(".", 1)
    expected = [f"Für_ DAW_/{name}", f"Für_ DAW_/{stem} (2).{ext}"]
    expected.append(f"Für_ DAW_/{Path(chosen[2]['path']).name}")
    assert archive.namelist() == expected
    for member, hit in zip(expected, chosen, strict=True):
        assert archive.read(member) == Path(hit["path"]).read_bytes()
    ok(client.delete(f"/v1/collections/{name_url}"), 204)


def test_collections_need_the_key_to_write_when_one_is_set(
    library: Library, indexed: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(indexed, data, ignore=shutil.ignore_patterns("service.json", "*.lock"))
    for client in _client(tiny_bundle, data, library, api_key=KEY):
        assert client.get("/v1/collections").status_code == 200
        denied = client.post("/v1/collections", json={"name": "Keys"})
        assert denied.status_code == 401 and denied.json()["code"] == "unauthorized"
        ok(client.post("/v1/collections", json={"name": "Keys"}, headers={"X-API-Key": KEY}), 201)
        assert client.delete("/v1/collections/Keys").status_code == 401
        ok(client.delete("/v1/collections/Keys", headers={"X-API-Key": KEY}), 204)
