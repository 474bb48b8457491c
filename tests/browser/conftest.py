"""The browser tests' service and Chromium: one of each for the whole package (the service
ingests a library first, the slow part), and a fresh page (own localStorage) per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.synthetic import make_library
from tests.browser.helpers import CHROMIUM, FLAGS, Page, Served
from tests.support.ingest_helpers import ingest, job_settings
from tests.support.live import live_app
from timbre.cli.wiring import build_app
from timbre.settings import load_settings


@pytest.fixture(scope="package")
def served(
    tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path, audio_embedder
) -> Iterator[Served]:  # type: ignore[no-untyped-def]

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
    with live_app(app) as url:
        shots = tmp_path_factory.getbasetemp() / "screenshots"
        shots.mkdir(exist_ok=True)
        yield Served(url, app, library, shots)


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
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


@pytest.fixture(params=[(1280, 800), (390, 844)], ids=["desktop", "phone"])
def sized(request: pytest.FixtureRequest, browser: Any, served: Served) -> Iterator[Page]:
    """A fresh page at a desktop's size, then at a phone's (390 px wide)."""
    width, height = request.param
    page = Page(browser, served, width, height)
    yield page
    errors = list(page.errors)
    page.context.close()
    assert errors == [], f"console errors: {errors}"
