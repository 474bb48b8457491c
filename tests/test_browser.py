"""The sample browser in Debian's headless Chromium, driven by Playwright, on a small indexed
library: waveforms before play, AIFF audition, load more, sorting, facets, favourites,
collections and their export, the details panel, keyboard-only use, a phone's width, and no
console errors. One service and one browser serve the whole module.

Screenshots of the main views are written to ``<pytest basetemp>/screenshots`` (never
committed); look at them after a change to the page.
"""

from __future__ import annotations

import io
import re
import shutil
import socket
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from ingest.synthetic import Library, make_library
from tests.ingest_helpers import ingest, job_settings
from timbre.cli.wiring import build_app
from timbre.settings import load_settings

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore::timbre.embedding.files.RandomWeightsWarning"),
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is missing"),
]

CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
KEY = "browser-test-key"


@dataclass
class Served:
    url: str
    app: Any
    library: Library
    shots: Path

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, self.url + path, timeout=30, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
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
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
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
    shots = tmp_path_factory.getbasetemp() / "screenshots"
    shots.mkdir(exist_ok=True)
    yield Served(url, app, library, shots)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(served: Served) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield instance
        instance.close()


class Page:
    """A fresh browser context (own localStorage) with its console errors and requests."""

    def __init__(self, browser: Any, served: Served, width: int, height: int) -> None:
        self.context = browser.new_context(
            viewport={"width": width, "height": height}, accept_downloads=True
        )
        self.page = self.context.new_page()
        self.served = served
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("response", self._response)

    def _console(self, message: Any) -> None:
        # Chromium logs every failed response as "Failed to load resource" without its URL;
        # _response records those with the URL instead.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.errors.append(f"{response.status} {response.url}")

    def open(self, query: str = "") -> Any:
        self.page.goto(self.served.url + query)
        self.page.wait_for_function("() => document.querySelector('#status') !== null")
        return self.page

    def search(self, text: str) -> Any:
        self.page.fill("#query", text)
        self.page.press("#query", "Enter")
        self.page.wait_for_selector("#results .hit")
        self.wait_status("sample")
        return self.page.locator("#results .hit")

    def wait_status(self, pattern: str) -> None:
        """Wait until the status line matches ``pattern`` (a regular expression)."""
        self.page.wait_for_function(
            "(p) => new RegExp(p).test(document.querySelector('#status').textContent)", arg=pattern
        )

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.served.shots / f"{name}.png"), full_page=False)

    def overflow(self) -> int:
        return int(
            self.page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
        )


@pytest.fixture
def web(browser: Any, served: Served) -> Iterator[Page]:
    page = Page(browser, served, 1400, 900)
    yield page
    errors = list(page.errors)
    page.context.close()
    assert errors == [], f"console errors: {errors}"


def _names(rows: Any) -> list[str]:
    return list(rows.locator(".name").all_inner_texts())


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
    names = _names(rows)
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


# -- listing ---------------------------------------------------------------------------------


def test_load_more_pages_through_every_result_with_the_total(web: Page, served: Served) -> None:
    web.open("/?per_page=10")
    rows = web.search("warm pad")
    total = len(served.library.files)
    assert rows.count() == 10
    assert f"10 of {total} samples" in web.page.locator("#status").inner_text()
    more = web.page.locator("#more")
    assert more.inner_text() == "Load 10 more"
    while more.is_visible():
        before = rows.count()
        more.click()
        web.page.wait_for_function(
            "(n) => document.querySelectorAll('#results .hit').length > n", arg=before
        )
    expected = served.api("POST", "/v1/search/text", json={"query": "warm pad", "top_k": total})
    assert [h.get_attribute("data-id") for h in rows.all()] == [h["id"] for h in expected["hits"]]
    assert f"{total} samples" in web.page.locator("#status").inner_text()


def _bpms(web: Page) -> list[float | None]:
    texts = web.page.locator("#results .hit .col.bpm").all_inner_texts()
    return [float(t) if t.strip() else None for t in texts]


def test_sorting_by_bpm_key_and_name(web: Page) -> None:
    web.open()
    web.page.get_by_role("button", name=re.compile("^All samples")).click()
    web.wait_status("sample")
    web.page.locator("#columns").get_by_role("button", name="BPM").click()
    bpms = _bpms(web)
    known = [b for b in bpms if b is not None]
    assert len(known) >= 4 and known == sorted(known)
    assert bpms[: len(known)] == known  # samples without a tempo come last
    web.page.locator("#columns").get_by_role("button", name="BPM").click()  # again: descending
    known_desc = [b for b in _bpms(web) if b is not None]
    assert known_desc == sorted(known, reverse=True)
    web.page.select_option("#sort", "name")
    names = _names(web.page.locator("#results .hit"))
    assert names == sorted(
        names,
        key=lambda n: [int(t) if t.isdigit() else t.casefold() for t in re.split(r"(\d+)", n)],
    )
    web.page.select_option("#sort", "key")
    keys = [k for k in web.page.locator("#results .hit .col.key").all_inner_texts() if k]
    order = [
        "C",
        "Cm",
        "C#",
        "C#m",
        "D",
        "Dm",
        "D#",
        "D#m",
        "E",
        "Em",
        "F",
        "Fm",
        "F#",
        "F#m",
        "G",
        "Gm",
        "G#",
        "G#m",
        "A",
        "Am",
        "A#",
        "A#m",
        "B",
        "Bm",
    ]
    enharmonic = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#"}

    def rank(key: str) -> int:
        root = key.rstrip("m")
        return order.index(enharmonic.get(root, root) + ("m" if key.endswith("m") else ""))

    assert len(keys) >= 4 and [rank(k) for k in keys] == sorted(rank(k) for k in keys)
    web.shot("sorted-by-key")


# -- filters and folders ----------------------------------------------------------------------


def _facet(web: Page, field: str) -> dict[str, int]:
    """The values a facet group offers, with their counts (after "Show all")."""
    group = web.page.locator(f"#facets fieldset[data-field={field}]")
    group.locator("label").first.wait_for()
    more = group.get_by_role("button", name=re.compile("^Show all"))
    if more.count():
        more.click()
    labels = group.locator("label")
    return {
        labels.nth(i).locator("input").get_attribute("value") or "": int(
            labels.nth(i).locator(".count").inner_text().replace(",", "")
        )
        for i in range(labels.count())
    }


def _shown_ids(web: Page) -> set[str]:
    return {h.get_attribute("data-id") or "" for h in web.page.locator("#results .hit").all()}


def test_facet_values_and_counts_come_from_the_library(web: Page, served: Served) -> None:
    web.open()
    files = served.library.files.values()
    packs = _facet(web, "pack")
    assert packs == dict(Counter(e.pack for e in files))
    genres = _facet(web, "genre")
    assert genres == dict(Counter(e.genre for e in files if e.genre))
    web.shot("facets")
    # Ticking a genre lists its samples (no words: a browse) and recounts the other facets.
    genre, count = sorted(genres.items())[0]
    web.page.locator(f"#facets fieldset[data-field=genre] input[value='{genre}']").check()
    web.wait_status(f"^{count} samples? ")
    expected = served.api(
        "POST", "/v1/browse", json={"filter": {"genre": genre.upper()}, "top_k": 200}
    )
    assert expected["total"] == count  # the store matches it case-insensitively too
    assert _shown_ids(web) == {h["id"] for h in expected["hits"]}
    assert sum(_facet(web, "pack").values()) == count
    # Words search within the filter; a BPM range narrows it further.
    web.search("loop")
    assert _shown_ids(web) <= {h["id"] for h in expected["hits"]}
    web.page.fill("#bpm-min", "100")
    web.page.press("#bpm-min", "Enter")
    web.page.locator("#bpm-min").blur()
    web.page.wait_for_function(
        "() => [...document.querySelectorAll('#results .hit .col.bpm')]"
        ".every((c) => c.textContent.trim() !== '' && Number(c.textContent) >= 100)"
    )
    web.page.get_by_role("button", name="Clear filters").click()
    web.page.wait_for_function(
        "() => !document.querySelector('#facets input:checked') &&"
        " document.querySelector('#bpm-min').value === ''"
    )


def test_the_folder_browser_lists_a_folder_and_searches_within_it(
    web: Page, served: Served
) -> None:
    def under(folder: Path) -> set[Path]:
        return {p for p in served.library.files if p.is_relative_to(folder)}

    web.open()
    tree = web.page.locator("#folders")
    tree.locator("button.folder").first.wait_for()
    packs = sorted({p.relative_to(served.library.root).parts[0] for p in served.library.files})
    shown = tree.locator("button.folder").all()
    assert sorted(b.locator("span").first.inner_text() for b in shown) == packs
    pack = served.library.root / packs[0]
    button = tree.get_by_role("button", name=re.compile(f"^{re.escape(packs[0])}"))
    assert button.locator(".count").inner_text() == str(len(under(pack)))
    button.click()
    web.wait_status(f"^{len(under(pack))} samples ")
    names = web.page.locator("#results .hit .name")
    assert {Path(t or "") for t in (n.get_attribute("title") for n in names.all())} == under(pack)
    # One level down, then a search limited to it.
    sub = sorted({pack / p.relative_to(pack).parts[0] for p in under(pack) if p.parent != pack})[0]
    tree.get_by_role("button", name=re.compile(f"^{re.escape(sub.name)}")).click()
    web.wait_status(f"^{len(under(sub))} samples? ")
    # The list and the tree load in parallel: wait for the tree to name the folder too.
    web.page.wait_for_function(
        "(n) => document.querySelector('#folders .here')?.textContent === n", arg=sub.name
    )
    assert web.page.locator("#folder-chip").is_visible()
    # A long folder name in the chip is cut short, never widening the sidebar.
    assert (
        web.page.evaluate(
            "(() => { const s = document.querySelector('#sidebar');"
            " return s.scrollWidth - s.clientWidth; })()"
        )
        == 0
    )
    web.shot("folder")
    web.search("kick")
    paths = {Path(n.get_attribute("title") or "") for n in names.all()}
    assert paths and paths <= under(sub)
    # Up leads back to the pack; the chip's × searches the whole library again.
    tree.get_by_role("button", name=re.compile("^↑")).click()
    web.page.wait_for_function(
        "(n) => document.querySelector('#folders .here')?.textContent === n", arg=pack.name
    )
    web.page.locator("#folder-chip button").click()
    web.page.locator("#folder-chip").wait_for(state="hidden")
    web.wait_status(f"^{len(served.library.files)} samples ")


# -- favourites and collections ----------------------------------------------------------------


def test_a_favourite_survives_a_reload(web: Page, served: Served) -> None:
    web.open()
    rows = web.search("snare")
    name = _names(rows)[2]
    star = rows.nth(2).get_by_role("button", name=f"Favourite {name}")
    star.click()
    web.page.wait_for_function(
        "() => document.querySelectorAll('#results .fav[aria-pressed=true]').length === 1"
    )
    web.page.reload()
    web.page.get_by_role("button", name=re.compile(r"^★ Favourites, 1 sample\b")).click()
    web.wait_status("^1 sample\\b")
    assert _names(web.page.locator("#results .hit")) == [name]
    # The stars are marked once the memberships are read, just after the list is shown.
    web.page.wait_for_function(
        "() => document.querySelector('#results .fav').getAttribute('aria-pressed') === 'true'"
    )
    stored = served.api("GET", "/v1/collections/favourites")
    assert [Path(i["path"]).name for i in stored["items"]] == [name]
    web.shot("favourites")
    # Un-star it again (from the favourites view) so other tests start clean.
    web.page.locator("#results .fav").click()
    web.page.wait_for_function(
        "() => document.querySelector('#results .fav').getAttribute('aria-pressed') === 'false'"
    )
    assert served.api("GET", "/v1/collections/favourites")["count"] == 0


def test_a_collection_is_made_with_the_keyboard_and_exports_as_a_zip(
    web: Page, served: Served
) -> None:
    web.open()
    rows = web.search("bass loop")
    names = _names(rows)
    for index in (0, 1):
        rows.nth(index).click(position={"x": 300, "y": 10})  # select the row (name column)
        web.page.keyboard.press("a")
        web.page.wait_for_selector("#add-dialog[open]")
        if index == 0:
            web.page.fill("#add-new-name", "For the EP")
            web.page.keyboard.press("Enter")
        else:
            web.page.locator("#add-dialog .choices").get_by_role(
                "button", name="For the EP"
            ).click()
        web.page.wait_for_function("() => !document.querySelector('#add-dialog').open")
        web.page.wait_for_selector("#message:not([hidden])")
    web.page.get_by_role("button", name=re.compile(r"^For the EP, 2 samples")).click()
    web.wait_status("^2 samples\\b")
    assert _names(web.page.locator("#results .hit")) == names[:2]
    web.shot("collection")
    with web.page.expect_download() as info:
        web.page.get_by_role("link", name="Export as zip").click()
    download = info.value
    assert download.suggested_filename == "For the EP.zip"
    archive = zipfile.ZipFile(io.BytesIO(Path(download.path()).read_bytes()))
    assert archive.namelist() == [f"For the EP/{n}" for n in names[:2]]
    by_name = {p.name: p for p in served.library.files}
    for n in names[:2]:
        assert archive.read(f"For the EP/{n}") == by_name[n].read_bytes()
    # Remove one, then delete the collection.
    web.page.get_by_role("button", name=f"Remove {names[0]} from For the EP").click()
    web.wait_status("^1 sample\\b")
    web.page.once("dialog", lambda d: d.accept())
    web.page.get_by_role("button", name="Delete collection").click()
    web.page.wait_for_function(
        "() => !document.querySelector('#collections [data-collection=\"For the EP\"]')"
    )


def test_writes_ask_for_the_api_key_and_keep_it(web: Page, served: Served) -> None:
    api = served.app.state.api
    served.app.state.api = api.model_copy(update={"api_key": SecretStr(KEY)})
    try:
        web.open()
        rows = web.search("hat")
        name = _names(rows)[0]
        rows.nth(0).get_by_role("button", name=f"Favourite {name}").click()
        web.page.wait_for_selector("#key-dialog[open]")
        web.page.fill("#key-input", KEY)
        web.page.get_by_role("button", name="Save").click()
        web.page.wait_for_function(
            "() => document.querySelector('#results .fav').getAttribute('aria-pressed') === 'true'"
        )
        assert web.page.evaluate("localStorage.getItem('timbre.apiKey')") == KEY
        web.page.reload()
        rows = web.search("hat")
        rows.nth(0).locator(".fav").click()  # un-star: the stored key is sent, no prompt
        web.page.wait_for_function(
            "() => document.querySelector('#results .fav').getAttribute('aria-pressed') === 'false'"
        )
        assert web.page.locator("#key-dialog").get_attribute("open") is None
    finally:
        served.app.state.api = api
    web.errors = [e for e in web.errors if not e.startswith("401 ")]  # refused once, by design


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
    assert _names(page.locator("#results .hit"))[0] == name
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


# -- a phone -------------------------------------------------------------------------------


def test_a_phone_width_never_scrolls_sideways(browser: Any, served: Served) -> None:
    web = Page(browser, served, 390, 844)
    try:
        page = web.open()
        assert web.overflow() == 0
        web.shot("phone-home")
        rows = web.search("punchy kick")
        assert web.overflow() == 0
        web.shot("phone-search")
        rows.nth(0).get_by_role("button", name=re.compile("^More like this")).click()
        page.locator("#reference").wait_for(state="visible")
        web.wait_status("sample")
        page.fill("#query", "darker and longer")
        assert web.overflow() == 0
        for selector in ("#go", "#alpha", "#clear-reference"):
            box = page.locator(selector).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, selector
        web.shot("phone-reference")
        page.get_by_role("button", name="Library & filters").click()
        assert page.locator("#sidebar").is_visible() and web.overflow() == 0
        web.shot("phone-sidebar")
        page.get_by_role("button", name="Library & filters").click()
        page.locator("#results .hit").nth(1).dblclick(position={"x": 120, "y": 12})
        page.locator("#details dl.fields").wait_for()
        assert web.overflow() == 0
        web.shot("phone-details")
        assert web.errors == []
    finally:
        web.context.close()
