"""The search page in Debian's headless Chromium, driven by Playwright: search, see results,
play one (its audio element receives data), and ask for "more like this"."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.synthetic import make_library
from tests.ingest_helpers import ingest, job_settings
from timbre.cli.wiring import build_app
from timbre.settings import load_settings

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore::timbre.embedding.files.RandomWeightsWarning"),
]

CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path, audio_embedder
) -> Iterator[str]:  # type: ignore[no-untyped-def]
    import uvicorn

    library = make_library(
        tmp_path_factory.mktemp("lib") / "Samples",
        one_shots_per_pack=6,
        loops_per_pack=1,
        loop_bars=(1,),
    )
    data = tmp_path_factory.mktemp("data")
    ingest(job_settings(tiny_bundle, data), audio_embedder, [library.root])
    settings = load_settings(
        data_dir=data, models={"bundle": tiny_bundle}, api={"library_roots": [str(library.root)]}
    )
    port = _free_port()
    config = uvicorn.Config(build_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    import httpx

    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        pytest.fail("the service did not become ready")
    yield url
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_search_play_and_more_like_this(server: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page()
            page.goto(server)
            page.fill("#query", "punchy kick")
            page.keyboard.press("Enter")
            page.wait_for_selector("#results .hit")
            hits = page.locator("#results .hit")
            assert hits.count() == 20
            assert "random-weight" in page.locator("#notice").inner_text().lower()
            assert "faiss" in page.locator("#status").inner_text()

            # Play a WAV result (Chromium plays WAV, FLAC, MP3 and Ogg; not AIFF): its <audio>
            # element must load real data from the API.
            names = hits.locator(".name").all_inner_texts()
            playable = next(i for i, n in enumerate(names) if n.endswith(".wav"))
            hits.nth(playable).locator(".play").click()
            page.wait_for_function(
                "(i) => { const a = document.querySelectorAll('#results .hit audio')[i];"
                " return a.readyState >= 2 && a.duration > 0; }",
                arg=playable,
            )
            duration = page.evaluate(
                "(i) => document.querySelectorAll('#results .hit audio')[i].duration", playable
            )
            assert duration > 0.05
            first = hits.nth(0)

            # Keyboard: focus the first hit, j/k move, m asks for more like the focused one.
            first_name = first.locator(".name").inner_text()
            first.locator(".meta").click()
            page.keyboard.press("j")
            assert page.evaluate("document.activeElement.dataset.index") == "1"
            page.keyboard.press("k")
            assert page.evaluate("document.activeElement.dataset.index") == "0"
            page.keyboard.press("m")
            page.wait_for_function(
                "() => !document.querySelector('#reference').hidden"
                " && document.querySelector('#status').textContent.includes('results')"
            )
            assert page.locator("#reference-name").inner_text() == first_name
            top = page.locator("#results .hit").nth(0)
            assert (
                top.locator(".name").inner_text() == first_name
            )  # the reference itself ranks first
            assert float(top.locator(".score").inner_text()) == pytest.approx(1.0, abs=1e-3)

            # With a reference and text, the alpha slider drives a hybrid search.
            page.fill("#query", "dark pad")
            page.keyboard.press("Enter")
            page.wait_for_function(
                "() => document.querySelector('#status').textContent.includes('results')"
            )
            assert page.locator("#alpha").is_visible()

            # Dragging a result out carries a DownloadURL for Chrome to save the file.
            data = page.evaluate(
                """() => {
                    const li = document.querySelector('#results .hit');
                    const dt = new DataTransfer();
                    li.dispatchEvent(new DragEvent('dragstart', {dataTransfer: dt}));
                    return dt.getData('DownloadURL');
                }"""
            )
            assert data.startswith("audio/") and "/v1/items/" in data and data.endswith("/audio")
        finally:
            browser.close()
