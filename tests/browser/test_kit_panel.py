"""The kit panel: a kit of 8 pads built for the project, a pad swapped, locked, cleared and
filled by dropping a result on it, the bar played with Web Audio, and the sampler exports
fetched as zips. At a desktop's size and at a phone's (390 px).
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any
from urllib.parse import quote

from tests.browser.helpers import BROWSER_MARKS, Page, Served

pytestmark = BROWSER_MARKS


def kit_of(served: Served, name: str) -> Any:
    return served.api("GET", f"/v1/kits/{quote(name)}")


def pad_ids(web: Page) -> list[str | None]:
    return list(
        web.page.evaluate(
            "() => [...document.querySelectorAll('#pads .pad')].map((p) => p.dataset.id || null)"
        )
    )


def test_a_kit_is_built_swapped_played_and_exported(sized: Page, served: Served) -> None:
    web = sized
    width = web.page.viewport_size["width"]
    name = f"Browser kit {width}"
    page = web.open("/?bpm=124&key=Am")
    page.get_by_role("button", name="Kit", exact=True).click()
    page.fill("#kit-name", name)
    page.select_option("#kit-size", "8")
    page.get_by_role("button", name="Build", exact=True).click()
    pads = page.locator("#pads .pad")
    page.wait_for_function("() => document.querySelectorAll('#pads .pad').length === 8")

    # The pads are the service's: slots, samples and the project's fit.
    kit = kit_of(served, name)
    assert kit["context"]["bpm"] == 124
    assert [p.get_attribute("data-slot") for p in pads.all()] == [p["slot"] for p in kit["pads"]]
    assert pad_ids(web) == [p["id"] for p in kit["pads"]]
    assert sum(1 for p in kit["pads"] if p["id"]) >= 4
    assert page.locator("#pads .pad .pad-fit .badge").count() >= 1
    assert web.overflow() == 0
    web.shot(f"kit-{width}")

    # Swap the first pad for the next closest sample of its slot.
    first = pad_ids(web)[0]
    assert first is not None
    pads.nth(0).get_by_role("button", name=re.compile("^Swap pad 1 ")).click()
    page.wait_for_function(
        "(id) => document.querySelector('#pads .pad').dataset.id !== id", arg=first
    )
    swapped = pad_ids(web)[0]
    assert swapped and swapped != first and kit_of(served, name)["pads"][0]["id"] == swapped

    # Lock the second: it cannot be swapped nor cleared until unlocked.
    pads.nth(1).get_by_role("button", name="Lock pad 2").click()
    page.wait_for_selector("#pads .pad:nth-child(2).locked")
    assert kit_of(served, name)["pads"][1]["locked"] is True
    assert pads.nth(1).get_by_role("button", name=re.compile("^Swap pad 2")).is_disabled()

    # Clear the third, then drop a result row on it.
    pads.nth(2).get_by_role("button", name="Clear pad 3").click()
    page.wait_for_selector("#pads .pad:nth-child(3).vacant")
    assert kit_of(served, name)["pads"][2]["id"] is None
    rows = web.search("clap")
    dropped = rows.nth(0).get_attribute("data-id")
    rows.nth(0).drag_to(pads.nth(2).locator(".pad-face"))
    page.wait_for_function(
        "(id) => document.querySelector('#pads .pad:nth-child(3)').dataset.id === id",
        arg=dropped,
    )
    assert kit_of(served, name)["pads"][2]["id"] == dropped

    # One bar at the project's tempo, scheduled with Web Audio; a second click stops it.
    page.click("#kit-play")
    page.wait_for_function("() => Number(document.querySelector('#pads').dataset.scheduled) > 0")
    assert "124 BPM" in page.locator("#kit-status").inner_text()
    assert page.locator("#kit-play").get_attribute("aria-pressed") == "true"
    page.click("#kit-play")
    assert page.locator("#kit-play").get_attribute("aria-pressed") == "false"

    # A new tempo in the header moves the open kit to it: same pads, the new project's fits.
    before = pad_ids(web)
    page.fill("#project-bpm", "128")
    page.press("#project-bpm", "Enter")
    page.wait_for_function(
        "() => document.querySelector('#kit-status').textContent.includes('128 BPM')"
    )
    moved = kit_of(served, name)
    assert moved["context"]["bpm"] == 128 and moved["context"]["key"] == "Am"
    assert pad_ids(web) == before == [p["id"] for p in moved["pads"]]
    # A tempo being typed does not move it: only one entered does.
    page.fill("#project-bpm", "13")
    page.wait_for_timeout(900)  # past the search's 450 ms pause over typing
    assert kit_of(served, name)["context"]["bpm"] == 128
    page.fill("#project-bpm", "126")
    page.press("#project-bpm", "Tab")
    page.wait_for_function(
        "() => document.querySelector('#kit-status').textContent.includes('126 BPM')"
    )
    moved = kit_of(served, name)
    assert moved["context"]["bpm"] == 126
    # Other header settings leave the kit where it is.
    stamp = moved["updated_at"]
    page.check("#fit-first")
    page.wait_for_load_state("networkidle")
    assert kit_of(served, name)["updated_at"] == stamp
    page.uncheck("#fit-first")

    # The exports are zips, matched to the project while "Match to project" is on.
    for fmt in ("sfz", "decentsampler", "hardware"):
        href = page.locator(f"#kit-export-{fmt}").get_attribute("href") or ""
        assert f"format={fmt}" in href and "matched=true" in href
        response = page.request.get(served.url + href)
        assert response.ok, (href, response.status)
        archive = zipfile.ZipFile(io.BytesIO(response.body()))
        assert archive.testzip() is None and len(archive.namelist()) >= 2
    page.uncheck("#match-project")
    assert "matched=false" in (page.locator("#kit-export-sfz").get_attribute("href") or "")
    assert web.overflow() == 0
    page.evaluate("window.scrollTo(0, 0)")
    web.shot(f"kit-after-{width}")
