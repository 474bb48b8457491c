"""The page says which model family answers, with the models' ids on hover.

The package's service runs the default family (MERT → CLaMP3); a second service here runs a
clap data dir (the tiny random clap bundle), both looked at on a desktop and a phone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.synthetic import make_library
from tests.browser.helpers import BROWSER_MARKS, Page, Served
from tests.support.ingest_helpers import ingest
from tests.support.live import live_app
from timbre.cli.wiring import build_app
from timbre.settings import load_settings

pytestmark = BROWSER_MARKS

SIZES = [(1400, 900), (390, 844)]


@pytest.fixture(scope="module")
def clap_served(tmp_path_factory: pytest.TempPathFactory, clap_bundle: Path) -> Iterator[Served]:
    from timbre.embedding.embedder import load_audio_embedder

    library = make_library(
        tmp_path_factory.mktemp("clap-lib") / "Samples",
        one_shots_per_pack=2,
        loops_per_pack=0,
        broken=False,
    )
    settings = load_settings(
        data_dir=tmp_path_factory.mktemp("clap-page-data"),
        models={"family": "clap", "bundle": clap_bundle, "runtime": "torch", "threads": 2},
        api={"library_roots": [str(library.root)]},
    )
    embedder = load_audio_embedder(settings.models)
    ingest(settings, embedder, [library.root])
    app = build_app(settings)
    with live_app(app) as url:
        shots = tmp_path_factory.getbasetemp() / "screenshots"
        shots.mkdir(exist_ok=True)
        yield Served(url, app, library, shots)


def _badge(web: Page, shot: str) -> tuple[str, str]:
    """The family's visible name and its hover text, once the page has read /v1/stats."""
    page = web.open()
    badge = page.locator("#family")
    badge.wait_for(state="visible")
    web.shot(f"{shot}-{page.viewport_size['width']}")
    box = badge.bounding_box()
    width = page.viewport_size["width"]
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
    assert web.overflow() == 0
    # the name shows whole, not cut to an ellipsis, beside a one-line sidebar button
    assert badge.evaluate("(e) => e.scrollWidth <= e.clientWidth")
    toggle = page.locator("#toggle-sidebar")
    if toggle.is_visible():
        assert toggle.evaluate("(e) => e.getClientRects().length === 1 && e.clientHeight < 40")
    return page.locator("#family-name").inner_text(), badge.get_attribute("title") or ""


@pytest.mark.parametrize(("width", "height"), SIZES, ids=["desktop", "phone"])
def test_the_header_names_the_clap_family(
    browser: Any, clap_served: Served, width: int, height: int
) -> None:
    web = Page(browser, clap_served, width, height)
    try:
        name, title = _badge(web, "family-clap")
        assert name == "LAION-CLAP"
        stats = clap_served.api("GET", "/v1/stats")
        assert f"clap: {stats['models']['clap']}" in title.splitlines()
        assert title.startswith("Model family: clap")
        assert f"pipeline {stats['pipeline_version']}" in title
        assert web.errors == []
    finally:
        web.context.close()


@pytest.mark.parametrize(("width", "height"), SIZES, ids=["desktop", "phone"])
def test_the_header_names_the_default_family(
    browser: Any, served: Served, width: int, height: int
) -> None:
    web = Page(browser, served, width, height)
    try:
        name, title = _badge(web, "family-clamp3")
        assert name == "MERT → CLaMP3"
        stats = served.api("GET", "/v1/stats")
        lines = title.splitlines()
        for part in ("mert", "clamp3", "xlmr"):
            assert f"{part}: {stats['models'][part]}" in lines
        assert web.errors == []
    finally:
        web.context.close()
