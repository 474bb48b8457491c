"""The audio side: on first need by default, or in the background once the service is up
(``api.preload_audio``); either way a query that needs it waits for it, and /v1/stats says
where it stands."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from ingest.synthetic import Library
from tests.support.api_fixtures import api_settings, copy_of, ok, opened


def _upload(client: TestClient, library: Library) -> dict:  # type: ignore[type-arg]
    path = next(p for p in library.files if p.suffix == ".flac")
    with path.open("rb") as handle:
        files = {"file": (path.name, handle)}
        return ok(client.post("/v1/search/audio", files=files, data={"top_k": "3"}))


def _audio_state(client: TestClient) -> dict:  # type: ignore[type-arg]
    return ok(client.get("/v1/stats"))["audio_model"]


def test_on_first_need_by_default(
    library: Library, indexed_dir: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    settings = api_settings(tiny_bundle, copy_of(indexed_dir, tmp_path), library)
    assert settings.api.preload_audio is False
    with opened(settings) as client:
        assert _audio_state(client)["state"] == "not_loaded"
        assert _upload(client, library)["hits"]  # waits for the load, then answers
        state = _audio_state(client)
        assert state["state"] == "ready" and state["load_s"] > 0


def test_preloaded_in_the_background_once_ready(
    library: Library, indexed_dir: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    data = copy_of(indexed_dir, tmp_path)
    with opened(api_settings(tiny_bundle, data, library, preload_audio=True)) as client:
        deadline = time.monotonic() + 120
        # One read per turn: a second read could already see "ready" after the first did not.
        while (state := _audio_state(client)["state"]) != "ready" and time.monotonic() < deadline:
            assert state in ("not_loaded", "loading")
            time.sleep(0.1)
        assert state == "ready"  # and no audio query asked for it
        assert _upload(client, library)["hits"]
