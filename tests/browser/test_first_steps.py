"""What a new user meets first on the page: the sort a new query starts with, waveforms of quiet
samples, an empty library, a service that stopped, and the "/" key on a fresh page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.helpers import BROWSER_MARKS, Page, Served
from tests.support.live import live_app
from timbre.cli.wiring import build_app
from timbre.settings import load_settings

pytestmark = BROWSER_MARKS

SIZES = [(1400, 900), (390, 844)]


def test_a_new_query_starts_in_relevance_order_and_browsing_in_path_order(
    web: Page, served: Served
) -> None:
    web.open()
    web.search("warm pad")
    web.page.select_option("#sort", "name")
    rows = web.search("punchy kick")
    assert web.page.locator("#sort").input_value() == "relevance"
    best = served.api("POST", "/v1/search/text", json={"query": "punchy kick", "top_k": 3})
    assert rows.first.get_attribute("data-id") == best["hits"][0]["id"]
    web.page.get_by_role("button", name=re.compile("^All samples")).click()
    web.wait_status("sample")
    assert web.page.locator("#sort option").first.inner_text() == "path order"
    listed = served.api("POST", "/v1/browse", json={"top_k": 5})
    shown = [h.get_attribute("data-id") for h in web.page.locator("#results .hit").all()[:5]]
    assert shown == [h["id"] for h in listed["hits"]]
    web.shot("browse-in-path-order")


def test_a_quiet_sample_draws_a_waveform_not_a_flat_line(web: Page) -> None:
    web.open()
    heights = web.page.evaluate(
        """async () => {
          const wave = await import("/static/wave.js");
          const drawn = [];
          for (const level of [255, 6]) {  // full scale, and -33 dB
            const canvas = document.createElement("canvas");
            canvas.style.cssText = "width:200px;height:40px";
            document.body.append(canvas);
            wave.draw(canvas, new Uint8Array(200).fill(level));
            const ctx = canvas.getContext("2d");
            const column = ctx.getImageData(Math.floor(canvas.width / 2), 0, 1, canvas.height);
            let painted = 0;
            for (let y = 0; y < canvas.height; y++) painted += column.data[y * 4 + 3] > 0;
            drawn.push(painted / canvas.height);
            canvas.remove();
          }
          return drawn;
        }"""
    )
    loud, quiet = heights
    assert loud > 0.8
    assert quiet == pytest.approx(loud, abs=0.05)  # drawn to its own loudest bucket


def test_the_slash_key_on_a_fresh_page_focuses_the_box_without_typing(web: Page) -> None:
    web.open()
    web.page.keyboard.press("/")
    assert web.page.evaluate("document.activeElement.id") == "query"
    assert web.page.locator("#query").input_value() == ""
    web.page.keyboard.type("kick")
    assert web.page.locator("#query").input_value() == "kick"


@pytest.mark.parametrize(("width", "height"), SIZES, ids=["desktop", "phone"])
def test_an_empty_library_and_a_stopped_service_say_what_to_do(
    browser: Any,
    served: Served,
    tiny_bundle: Path,
    tmp_path: Path,
    width: int,
    height: int,
) -> None:
    settings = load_settings(data_dir=tmp_path / "data", models={"bundle": tiny_bundle})
    # A fresh `timbre serve`: nothing indexed yet, so never "ready"; alive is enough.
    with live_app(build_app(settings), ready="/healthz") as url:
        own = Served(url, None, served.library, served.shots)
        web = Page(browser, own, width, height)
        try:
            web.open()
            web.page.fill("#query", "punchy kick")
            web.page.press("#query", "Enter")
            empty = web.page.locator("#empty")
            empty.get_by_text("Is the library indexed?").wait_for()
            assert "punchy kick" in empty.inner_text()
            web.shot(f"empty-library-{width}")
        except BaseException:
            web.context.close()
            raise
    try:  # the service has stopped; the page is still open
        web.page.fill("#query", "warm pad")
        web.page.press("#query", "Enter")
        empty.get_by_text("not answering").wait_for()
        assert "timbre serve" in empty.inner_text()
        assert "Failed to fetch" not in web.page.locator("body").inner_text()
        assert web.overflow() <= 0
        web.shot(f"service-down-{width}")
    finally:
        web.context.close()
