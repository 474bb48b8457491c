"""The "Sound" column: the instrument a file's own name states wins over the model's zero-shot
category, which is shown as a guess (a question mark, muted, titled "model's guess")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.synthetic import Library
from tests.browser.helpers import BROWSER_MARKS, Page, Served
from tests.support.audio_factory import strum, write
from tests.support.ingest_helpers import ingest, job_settings
from tests.support.live import live_app
from timbre.cli.wiring import build_app
from timbre.settings import load_settings
from timbre.store import open_store, snapshots_dir
from timbre.store.snapshot import export_snapshot

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def heard(
    tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path, audio_embedder: Any
) -> Iterator[Served]:
    """A snare named by its kit abbreviation and an unnamed strum, both heard as "guitar"."""
    root = tmp_path_factory.mktemp("sound") / "Kit"
    snare = write(root / "SN_06.wav", strum(0.5), 44100)
    take = write(root / "take_3.wav", strum(2.0), 44100)
    data = tmp_path_factory.mktemp("sound-data")
    settings = job_settings(tiny_bundle, data)
    ingest(settings, audio_embedder, [root])
    # The random test model's categories are noise: write the disagreement the page must show
    # as the labeller stores it (category, and an instrument from it only where names gave none).
    store = open_store(settings, audio_embedder.info)
    try:
        ids = {Path(r.payload["path"]).name: r.id for r in store.live().scroll()}
        store.live().set_payloads(
            {
                ids[snare.name]: {"category": "guitar"},
                ids[take.name]: {
                    "category": "guitar",
                    "instrument": "guitar",
                    "instrument_source": "audio",
                },
            }
        )
        export_snapshot(store.live(), snapshots_dir(data), source_mode=store.mode, keep=2)
    finally:
        store.close()
    served_settings = load_settings(
        data_dir=data, models={"bundle": tiny_bundle}, api={"library_roots": [str(root)]}
    )
    with live_app(build_app(served_settings)) as url:
        shots = tmp_path_factory.getbasetemp() / "screenshots"
        shots.mkdir(exist_ok=True)
        yield Served(url, None, Library(root, {}, {}), shots)


def test_the_name_wins_and_the_model_is_shown_guessing(browser: Any, heard: Served) -> None:
    web = Page(browser, heard, 1400, 600)
    try:
        web.open()
        rows = web.search("strum")
        assert rows.count() == 2
        cells = {row.locator(".name").inner_text(): row.locator(".col.sound") for row in rows.all()}
        named, guessed = cells["SN_06.wav"], cells["take_3.wav"]
        assert named.inner_text() == "snare"
        assert "guess" not in (named.get_attribute("class") or "")
        assert "model's category: guitar" in (named.get_attribute("title") or "")
        assert guessed.inner_text() == "guitar?"
        assert "guess" in (guessed.get_attribute("class") or "")
        assert (guessed.get_attribute("title") or "").startswith("model's guess")
        # muted and slanted, unlike a stated instrument
        style = "(e) => getComputedStyle(e).fontStyle"
        assert (guessed.evaluate(style), named.evaluate(style)) == ("italic", "normal")
        web.shot("sound-column")
        assert web.errors == []
    finally:
        web.context.close()
