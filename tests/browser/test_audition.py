"""The browser's audition: waveforms before play, AIFF playback and seeking, the details
panel, the reference, keyboard-only use, the slider and dragging a row out.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser.helpers import BROWSER_MARKS, Page, row_names

pytestmark = BROWSER_MARKS


# -- waveforms and audition -------------------------------------------------------------------


def test_waveforms_are_painted_before_anything_plays(web: Page) -> None:
    web.open()
    rows = web.search("punchy kick")
    web.page.wait_for_function(
        "() => [...document.querySelectorAll('#results .hit canvas.wave')]"
        ".every((c) => c.dataset.painted === 'peaks')"
    )
    # Every row's canvas holds drawn pixels (the bars are opaque on a transparent canvas).
    inked = web.page.evaluate(
        """() => [...document.querySelectorAll('#results .hit canvas.wave')].map((c) => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
            return n / (c.width * c.height);
        })"""
    )
    assert len(inked) == rows.count() and min(inked) > 0.005
    assert not any("/audio" in url for url in web.requests), "audio was fetched to draw"
    assert web.page.evaluate("document.querySelector('#player').paused")
    web.shot("search-desktop")


def test_aiff_audition_advances_current_time_and_seeks(web: Page) -> None:
    web.open()
    rows = web.search("pad")
    names = row_names(rows)
    aiff = next(i for i, n in enumerate(names) if n.endswith(".aiff"))
    row = rows.nth(aiff)
    row.get_by_role("button", name=f"Play {names[aiff]}").click()
    web.page.wait_for_function("() => document.querySelector('#player').currentTime > 0.05")
    src = web.page.evaluate("document.querySelector('#player').src")
    assert src.endswith("/audio?rendition=wav")  # Chromium cannot play AIFF itself
    assert row.locator(".play").get_attribute("aria-label") == f"Stop {names[aiff]}"
    assert web.page.locator("#message").is_hidden()
    # Click on the waveform three quarters in: the rendition seeks there (HTTP ranges).
    wave = row.locator("canvas.wave")
    box = wave.bounding_box()
    assert box is not None
    wave.click(position={"x": box["width"] * 0.75, "y": box["height"] / 2})
    duration = web.page.evaluate("document.querySelector('#player').duration")
    web.page.wait_for_function(
        "(d) => { const a = document.querySelector('#player');"
        " return !a.seeking && a.currentTime >= 0.7 * d; }",
        arg=duration,
    )
    # A WAV result plays its original file.
    wav = next(i for i, n in enumerate(names) if n.endswith(".wav"))
    rows.nth(wav).locator(".play").click()
    web.page.wait_for_function(
        "() => { const a = document.querySelector('#player');"
        " return a.src.endsWith('/audio') && a.currentTime > 0.02; }"
    )


# -- details, reference, keyboard ------------------------------------------------------------


def test_details_show_every_field_all_paths_and_neighbours(web: Page) -> None:
    web.open()
    rows = web.search("clap")
    rows.nth(0).dblclick(position={"x": 300, "y": 10})
    panel = web.page.locator("#details")
    panel.locator("dl.fields").wait_for()
    fields = panel.locator("dl.fields dt").all_inner_texts()
    for name in (
        "id",
        "path",
        "pack",
        "format",
        "duration_s",
        "content_sha256",
        "model",
        "pipeline_version",
        "ingested_at",
        "sample_rate",
        "channels",
    ):
        assert name in fields
    assert panel.locator("ul.paths li").count() >= 1
    panel.locator("ol.neighbours li").first.wait_for()
    assert panel.locator("ol.neighbours li").count() >= 3
    web.shot("details")
    # More like this, described with words, mixed by the slider: a hybrid search.
    panel.get_by_label("…described as").fill("darker")
    slider = panel.get_by_role("slider")
    assert slider.is_enabled()
    slider.fill("0.8")
    panel.get_by_role("button", name="Find similar").click()
    web.wait_status("sample")
    assert web.page.locator("#reference").is_visible() and panel.is_hidden()
    assert web.page.locator("#query").input_value() == "darker"
    assert web.page.locator("#alpha-value").inner_text() == "80% words"


def test_keyboard_only_audition_and_the_reference(web: Page) -> None:
    page = web.open()
    assert page.locator("#reference").is_hidden()
    page.keyboard.type("punchy kick")
    page.keyboard.press("Enter")
    web.wait_status("sample")
    # Down from the search box: the first result is selected and plays at once.
    page.keyboard.press("ArrowDown")
    page.wait_for_function("() => document.activeElement.dataset.index === '0'")
    page.wait_for_function("() => !document.querySelector('#player').paused")
    first = page.evaluate("document.querySelector('#player').src")
    page.keyboard.press("ArrowDown")
    page.wait_for_function("(s) => document.querySelector('#player').src !== s", arg=first)
    assert page.evaluate("document.activeElement.dataset.index") == "1"
    page.keyboard.press(" ")
    page.wait_for_function("() => document.querySelector('#player').paused")
    # Tab reaches the selected row's buttons, each with an accessible name.
    page.keyboard.press("Tab")
    label = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert label.startswith(("Play ", "Stop "))
    page.keyboard.press("Shift+Tab")
    # Enter opens the details; Esc closes them and gives the focus back.
    page.keyboard.press("Enter")
    page.locator("#details").wait_for(state="visible")
    assert page.evaluate("document.activeElement.id") == "details-title"
    page.keyboard.press("Escape")
    page.wait_for_function("() => document.activeElement.dataset.index === '1'")
    # m: more like this one; the reference ranks first and the slider waits for words.
    name = page.evaluate("document.activeElement.getAttribute('aria-label')")
    page.keyboard.press("m")
    page.locator("#reference").wait_for(state="visible")
    web.wait_status("sample")
    assert page.locator("#reference-name").inner_text() == name
    assert row_names(page.locator("#results .hit"))[0] == name
    assert page.locator("#alpha").is_disabled()
    score = float(page.locator("#results .hit .match").first.get_attribute("data-score"))
    assert score == pytest.approx(1.0, abs=1e-3)
    # Esc forgets the reference and what it found.
    page.keyboard.press("Escape")
    page.locator("#reference").wait_for(state="hidden")
    page.wait_for_function("() => document.querySelectorAll('#results .hit').length === 0")
    web.shot("keyboard-after-escape")


def test_the_slider_reads_sound_to_words_and_a_failed_upload_is_forgotten(
    web: Page, tmp_path: Path
) -> None:
    page = web.open()
    rows = web.search("pad")
    rows.nth(0).get_by_role("button", name=re.compile("^More like this")).click()
    page.locator("#reference").wait_for(state="visible")
    page.fill("#query", "bright")
    page.fill("#alpha", "1")
    assert page.locator("#alpha-value").inner_text() == "100% words"  # right = the words
    page.fill("#alpha", "0")
    assert page.locator("#alpha-value").inner_text() == "0% words"
    # An upload that is not audio: an error, and the next search works without it.
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio at all")
    page.set_input_files("#upload", str(bad))
    page.wait_for_selector("#message:not([hidden])")
    assert "notes.wav" in page.locator("#message").inner_text()
    assert page.locator("#reference").is_hidden()
    web.search("bright pad")
    assert "sample" in page.locator("#status").inner_text()
    web.errors = [e for e in web.errors if not e.startswith("422 ")]  # the refused upload


def test_dragging_a_row_carries_the_original_file(web: Page) -> None:
    web.open()
    web.search("kick")
    data = web.page.evaluate(
        """() => {
            const li = document.querySelector('#results .hit');
            const dt = new DataTransfer();
            li.dispatchEvent(new DragEvent('dragstart', {dataTransfer: dt, bubbles: true}));
            return dt.getData('DownloadURL');
        }"""
    )
    assert data.startswith("audio/") and "/v1/items/" in data and data.endswith("/audio")
