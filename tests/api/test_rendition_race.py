"""Renditions under a tiny cache budget: concurrent requests never see one deleted under them.

With a budget smaller than any rendition, every new rendition evicts the others; before,
one request's eviction deleted the file another was about to send (500s from
FileNotFoundError, and responses cut off). A rendition is now opened before anything can
evict it and held until its response ends.
"""

from __future__ import annotations

import io
import random
import threading
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import soundfile as sf

from ingest.synthetic import Library
from tests.support.api_fixtures import copy_of, ok
from tests.support.live import live_app
from timbre.cli.wiring import build_app
from timbre.search.media import MediaService
from timbre.settings import load_settings


class _Files:
    """The two calls MediaService makes of the search service, over real files by id."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def item(self, item_id: str) -> dict[str, Any]:
        return {"format": "aiff"}

    def item_file(self, item_id: str) -> Path:
        return self.files[item_id]


def test_a_rendition_being_served_is_never_evicted(tmp_path: Path) -> None:
    files = {}
    for n in range(3):
        files[str(n)] = tmp_path / f"{n}.aiff"
        sf.write(files[str(n)], np.full(4800, n / 4, np.float32), 48000, format="AIFF")
    media = MediaService(
        _Files(files),
        tmp_path / "cache",
        max_file_bytes=1 << 20,
        max_duration_s=60,
        rendition_cache_bytes=1,  # smaller than any rendition
    )
    held = media.wav_rendition("0")
    second = media.wav_rendition("1")  # over budget: evicts what it may
    second.close()
    assert held.path.is_file()  # still being served: not evicted
    assert sf.read(io.BytesIO(held.handle.read()))[0][0] == 0.0
    held.close()
    media.wav_rendition("2").close()
    assert not held.path.exists()  # released: evicted by the next one


def arrived_whole(reply: httpx.Response, expected: bytes, *, ranged: bool) -> bool:
    """Whether a rendition (or its first 100 bytes) arrived complete. Float WAVs carry a
    PEAK chunk with the time they were written, so two renders differ in those bytes: full
    responses are compared by length and samples, ranges by length and header."""
    if ranged:
        return (
            reply.status_code == 206
            and reply.content[:12] == expected[:12]
            and len(reply.content) == 100
        )
    if reply.status_code != 200 or len(reply.content) != len(expected):
        return False
    got, want = (sf.read(io.BytesIO(b), dtype="float32")[0] for b in (reply.content, expected))
    return bool(np.array_equal(got, want))


def test_concurrent_renditions_under_a_tiny_budget_all_arrive_whole(
    library: Library, indexed_dir: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    data = copy_of(indexed_dir, tmp_path)
    settings = load_settings(
        data_dir=data,
        models={"bundle": tiny_bundle, "threads": 2},
        api={"library_roots": [str(library.root)]},
        media={"rendition_cache_bytes": 1},  # smaller than any rendition
    )
    with live_app(build_app(settings)) as url:
        hits = ok(httpx.post(f"{url}/v1/search/text", json={"query": "loop", "top_k": 12}))["hits"]
        ids = [h["id"] for h in hits][:8]
        expected = {}
        for item_id in ids:  # each alone is over the budget, and still served whole
            reply = httpx.get(f"{url}/v1/items/{item_id}/audio", params={"rendition": "wav"})
            assert reply.status_code == 200 and reply.content[:4] == b"RIFF", reply.text
            expected[item_id] = reply.content
        failures: list[str] = []

        def hammer(seed: int) -> None:
            rng = random.Random(seed)
            with httpx.Client(base_url=url, timeout=60) as http:
                for _ in range(25):
                    item_id = rng.choice(ids)
                    headers = {"Range": "bytes=0-99"} if rng.random() < 0.3 else {}
                    reply = http.get(
                        f"/v1/items/{item_id}/audio", params={"rendition": "wav"}, headers=headers
                    )
                    if not arrived_whole(reply, expected[item_id], ranged=bool(headers)):
                        failures.append(f"{item_id}: {reply.status_code}, {len(reply.content)} B")

        threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
