"""The browser's lists: load more, sorting, facets from the library, the folder browser, and a
phone's width.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from tests.browser.helpers import BROWSER_MARKS, Page, Served, row_names

pytestmark = BROWSER_MARKS


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
    names = row_names(web.page.locator("#results .hit"))
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
