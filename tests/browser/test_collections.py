"""The browser's writes: favourites, collections made with the keyboard and their zip export,
and the API key that guards writes.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from pydantic import SecretStr

from tests.browser.helpers import BROWSER_MARKS, KEY, Page, Served, row_names

pytestmark = BROWSER_MARKS


# -- favourites and collections ----------------------------------------------------------------


def test_a_favourite_survives_a_reload(web: Page, served: Served) -> None:
    web.open()
    rows = web.search("snare")
    name = row_names(rows)[2]
    star = rows.nth(2).get_by_role("button", name=f"Favourite {name}")
    star.click()
    web.page.wait_for_function(
        "() => document.querySelectorAll('#results .fav[aria-pressed=true]').length === 1"
    )
    web.page.reload()
    web.page.get_by_role("button", name=re.compile(r"^★ Favourites, 1 sample\b")).click()
    web.wait_status("^1 sample\\b")
    assert row_names(web.page.locator("#results .hit")) == [name]
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
    names = row_names(rows)
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
    assert row_names(web.page.locator("#results .hit")) == names[:2]
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
    # With a project and "Match to project" on, the zip holds the loops at its tempo (a loop
    # joins the collection through the API, whatever the random-weight search put first).
    loop = served.api(
        "POST",
        "/v1/search/text",
        json={"query": "loop", "filter": {"kind": "loop"}, "top_k": 1},
    )["hits"][0]
    served.api("POST", "/v1/collections/For the EP/items", json={"ids": [loop["id"]]})
    web.page.fill("#project-bpm", "97")
    web.page.press("#project-bpm", "Enter")
    matched_link = web.page.get_by_role("link", name="Export matched as zip")
    matched_link.wait_for()
    web.shot("collection-matched")
    assert "bpm=97" in (matched_link.get_attribute("href") or "")
    with web.page.expect_download() as info:
        matched_link.click()
    archive = zipfile.ZipFile(io.BytesIO(Path(info.value.path()).read_bytes()))
    items = served.api("GET", "/v1/collections/For the EP")["items"]
    expected = [  # a loop (it has a tempo) is stretched; a one-shot goes in as it is
        f"{Path(i['path']).stem} (97 BPM).wav" if i["bpm"] else Path(i["path"]).name for i in items
    ]
    assert archive.namelist() == [f"For the EP/{n}" for n in expected]
    assert f"For the EP/{Path(loop['path']).stem} (97 BPM).wav" in archive.namelist()
    web.page.click("#clear-project")
    web.page.get_by_role("link", name="Export as zip").wait_for()
    # Open it again (the loop joined behind the page's back), remove one, delete it.
    web.page.get_by_role("button", name=re.compile(r"^For the EP, ")).click()
    web.wait_status(f"^{len(items)} samples\\b")
    web.page.get_by_role("button", name=f"Remove {names[0]} from For the EP").click()
    web.wait_status(f"^{len(items) - 1} samples?\\b")
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
        name = row_names(rows)[0]
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
