"""The watched-folders status line, as a producer sees it: a service that watches its library
(the real watcher), a file dropped in, and the drive unplugged.

Its own service (watching needs ``watch.enabled``, which the package's shared service does
not set); Chromium is the package's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from ingest.synthetic import Library
from tests.browser.helpers import BROWSER_MARKS, Page, Served
from tests.support.audio_factory import kick
from tests.support.live import live_app
from timbre.cli.wiring import build_app
from timbre.settings import load_settings

pytestmark = BROWSER_MARKS

RATE_HZ = 22050
WAIT_MS = 120_000
"""Longest wait for the line to show a change: a watch job embeds on a busy CPU."""


def _wav(path: Path, i: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, kick(RATE_HZ, 0.3, pitch_hz=40.0 + 9 * i), RATE_HZ)
    return path


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path) -> Iterator[Served]:
    root = (tmp_path_factory.mktemp("watched") / "Drops").resolve()
    files = [_wav(root / "Kicks" / f"Kick_{i}.wav", i) for i in range(2)]
    settings = load_settings(
        data_dir=tmp_path_factory.mktemp("watch-data"),
        models={"bundle": tiny_bundle, "threads": 2},
        ingest={"workers": 0, "profile": "sequential"},
        watch={"enabled": True, "roots": [root], "debounce_s": 0.3, "settle_s": 0.3},
    )
    app = build_app(settings)
    with live_app(app) as url:
        shots = tmp_path_factory.getbasetemp() / "screenshots"
        shots.mkdir(exist_ok=True)
        yield Served(url, app, Library(root, dict.fromkeys(files), {}), shots)  # type: ignore[arg-type]


def _line_matches(page: Any, pattern: str) -> None:
    page.wait_for_function(
        "(p) => { const l = document.querySelector('#watch-status');"
        " return !l.hidden && new RegExp(p).test(l.textContent); }",
        arg=pattern,
        timeout=WAIT_MS,
    )


def test_the_status_line_follows_the_watcher(browser: Any, watched: Served) -> None:
    web = Page(browser, watched, 1400, 900)
    page = web.page
    root = watched.library.root
    try:
        web.open()
        # At start the watcher reconciles the library: both kicks are indexed by it.
        _line_matches(page, r"^Watching 1 folder · .*updated [^:]+:\d\d:\d\d.*: 2 new$")
        assert "problem" not in (page.locator("#watch-status").get_attribute("class") or "")
        # A file dropped in: the line says what the watcher did, and the library's total and
        # folders follow without a reload; a search lists the new file.
        dropped = _wav(root / "New" / "Sub_Boom.wav", 7)
        _line_matches(page, r"last file event .*: 1 new$")
        page.wait_for_function(
            "() => document.querySelector('#library-count').textContent === '3'", timeout=WAIT_MS
        )
        page.locator("#folders").get_by_role("button", name=re.compile("^New")).wait_for()
        rows = web.search("kick")
        titles = {r.locator(".name").get_attribute("title") for r in rows.all()}
        assert str(dropped) in titles
        web.shot("watch-status")
        # The drive unplugged (an empty mount point in its place): said on the line, in the
        # warning colour, and nothing is deleted.
        away = root.with_name("Drops (unplugged)")
        root.rename(away)
        root.mkdir()
        try:
            _line_matches(page, rf"{root} .*unplugged")
            assert "problem" in (page.locator("#watch-status").get_attribute("class") or "")
            # A long line wraps under the header: the search box keeps its width.
            assert page.locator("#query").bounding_box()["width"] > 400
            assert web.overflow() == 0
            web.shot("watch-unplugged")
            stats = watched.api("GET", "/v1/stats")
            assert stats["snapshot"]["count"] == 3
        finally:
            root.rmdir()
            away.rename(root)
        _line_matches(page, r"^Watching 1 folder(?!.*unplugged)")
    finally:
        errors = list(web.errors)
        web.context.close()
    assert errors == [], f"console errors: {errors}"


def test_a_refused_watcher_says_why(
    browser: Any, tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path
) -> None:
    """A data dir whose live collection is another model family's is not watched (its jobs
    could only fail): the line says so, and why, in the warning colour."""
    from dataclasses import replace

    from tests.support.store_factory import model_info
    from timbre.store import open_store

    root = (tmp_path_factory.mktemp("refused") / "Drops").resolve()
    files = [_wav(root / "Kicks" / "Kick_0.wav", 0)]
    settings = load_settings(
        data_dir=tmp_path_factory.mktemp("refused-data"),
        models={"bundle": tiny_bundle, "threads": 2},
        watch={"enabled": True, "roots": [root]},
    )
    clap = replace(model_info(dim=64), family="clap", clap="laion/x@r1", mert="", clamp3="")
    open_store(settings, clap).close()  # the live collection: the clap family's
    app = build_app(settings)
    with live_app(app, ready="/healthz") as url:  # never ready: nothing it can search
        shots = tmp_path_factory.getbasetemp() / "screenshots"
        shots.mkdir(exist_ok=True)
        served = Served(url, app, Library(root, dict.fromkeys(files), {}), shots)  # type: ignore[arg-type]
        web = Page(browser, served, 1400, 900)
        try:
            web.open()
            _line_matches(page=web.page, pattern=r"^Not watching: .*clap model family")
            line = web.page.locator("#watch-status")
            assert "models.family is clamp3" in line.text_content()
            assert "problem" in (line.get_attribute("class") or "")
            web.shot("watch-refused")
        finally:
            web.context.close()
