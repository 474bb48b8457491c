"""The browser tests' service and Chromium: one of each for the whole package (the service
ingests a library first, the slow part), and a fresh page (own localStorage) per test."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.synthetic import make_library
from tests.api_fixtures import READY_WITHIN_S
from tests.browser.helpers import CHROMIUM, FLAGS, Page, Served, free_port
from tests.ingest_helpers import ingest, job_settings
from timbre.cli.wiring import build_app
from timbre.settings import load_settings


@pytest.fixture(scope="package")
def served(
    tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path, audio_embedder
) -> Iterator[Served]:  # type: ignore[no-untyped-def]
    import uvicorn

    library = make_library(
        tmp_path_factory.mktemp("lib") / "Samples",
        one_shots_per_pack=6,
        loops_per_pack=2,
        loop_bars=(1,),
        broken=False,
    )
    data = tmp_path_factory.mktemp("data")
    ingest(job_settings(tiny_bundle, data), audio_embedder, [library.root])
    settings = load_settings(
        data_dir=data, models={"bundle": tiny_bundle}, api={"library_roots": [str(library.root)]}
    )
    app = build_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_WITHIN_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        pytest.fail(f"the service was not ready after {READY_WITHIN_S:.0f} s")
    shots = tmp_path_factory.getbasetemp() / "screenshots"
    shots.mkdir(exist_ok=True)
    yield Served(url, app, library, shots)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="package")
def browser(served: Served) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield instance
        instance.close()


@pytest.fixture
def web(browser: Any, served: Served) -> Iterator[Page]:
    page = Page(browser, served, 1400, 900)
    yield page
    errors = list(page.errors)
    page.context.close()
    assert errors == [], f"console errors: {errors}"
