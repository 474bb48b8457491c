"""The producer's project on the page: the tempo and key in the header (remembered, carried by
the address), fit badges on every row, the fit controls, and auditions matched to the project.
Each test runs at a desktop's size and at a phone's (390 px).
"""

from __future__ import annotations

import re

from tests.browser.helpers import BROWSER_MARKS, Page, Served

pytestmark = BROWSER_MARKS


def width_of(web: Page) -> int:
    return int(web.page.viewport_size["width"])


def set_project(web: Page, bpm: str, key: str) -> None:
    web.page.fill("#project-bpm", bpm)
    web.page.locator("#project-bpm").dispatch_event("change")
    web.page.select_option("#project-key", key)


def fits_by_id(web: Page) -> dict[str, str]:
    return dict(
        web.page.evaluate(
            """() => [...document.querySelectorAll('#results .hit')].map((li) =>
                [li.dataset.id, li.querySelector('.col.fit').dataset.fits || ''])"""
        )
    )


def test_the_project_is_set_remembered_and_carried_by_the_address(
    sized: Page, served: Served
) -> None:
    web = sized
    page = web.open()
    assert page.locator("#fit-controls").is_hidden()  # no project, no fit controls
    set_project(web, "124", "Am")
    page.wait_for_function(
        "() => /[?&]bpm=124(&|$)/.test(location.search) && /key=Am/.test(location.search)"
    )
    assert page.locator("#fit-controls").is_visible()
    rows = web.search("bass loop")
    # The search carried the project, and every row shows how it fits, as the API says.
    assert web.bodies("/v1/search/text")[-1]["context"] == {
        "bpm": 124,
        "key": "Am",
        "sort": "score",
        "only_fitting": False,
    }
    expected = served.api(
        "POST",
        "/v1/search/text",
        json={"query": "bass loop", "top_k": 50, "context": {"bpm": 124, "key": "Am"}},
    )
    truth = {h["id"]: str(h["fit"]["fits"]).lower() for h in expected["hits"]}
    shown = fits_by_id(web)
    assert shown and all(shown[i] == truth[i] for i in shown)
    assert rows.locator(".col.fit .badge").count() >= rows.count()
    # A loop at 122 BPM in a 124 BPM project: 1.6 % faster, said in words in the tooltip.
    loop = next(h for h in expected["hits"] if h.get("bpm") == 122.0 and h.get("kind") == "loop")
    cell = page.locator(f'#results .hit[data-id="{loop["id"]}"] .col.fit')
    assert cell.locator(".badge.tempo").inner_text() == "+1.6 %"
    assert "needs 1.6 % faster" in (cell.get_attribute("title") or "")
    assert cell.is_visible()
    assert web.overflow() == 0
    web.shot(f"project-search-{width_of(web)}")
    # Sorted by fit on the page: the fitting rows first.
    page.select_option("#sort", "fit")
    order = list(fits_by_id(web).values())
    assert "false" in order and order == sorted(order, key=lambda f: f != "true")
    page.select_option("#sort", "relevance")

    # A reload keeps the project (this browser remembers it) and the rows' fit.
    page.goto(served.url + "/")
    page.wait_for_function("() => document.querySelector('#project-bpm').value === '124'")
    assert page.locator("#project-key").input_value() == "Am"
    assert "bpm=124" in page.url and "key=Am" in page.url
    web.search("bass loop")
    assert fits_by_id(web) == shown

    # Browsing sends the project as query parameters; "Only fitting" drops the rest.
    web.relisted(lambda: page.check("#only-fitting"))
    assert web.bodies("/v1/search/text")[-1]["context"]["only_fitting"] is True
    assert set(fits_by_id(web).values()) == {"true"}
    browsed: list[str] = []
    page.on("request", lambda r: browsed.append(r.url) if "/v1/browse" in r.url else None)
    if width_of(web) < 700:
        page.get_by_role("button", name="Library & filters").click()
    web.relisted(lambda: page.get_by_role("button", name=re.compile("^All samples")).click())
    assert any("bpm=124" in u and "key=Am" in u and "only_fitting=true" in u for u in browsed)
    assert set(fits_by_id(web).values()) == {"true"}
    assert web.overflow() == 0


def test_a_link_with_a_project_opens_with_it(sized: Page, served: Served) -> None:
    web = sized
    page = web.open("/?bpm=90&key=F%23%20minor&q=warm%20pad")
    assert page.locator("#project-bpm").input_value() == "90"
    assert page.locator("#project-key").input_value() == "F#m"  # any spelling reads
    # The words of the link are searched at once, with the project.
    page.wait_for_selector("#results .hit")
    assert page.locator("#query").input_value() == "warm pad"
    web.search("pad")
    assert "q=pad" in page.url and "bpm=90" in page.url
    assert web.page.locator("#results .hit .col.fit[data-fits]").count() > 0
    # The × forgets the project: no fit, no controls, nothing in the address.
    web.relisted(
        lambda: page.get_by_role("button", name="Forget the project's tempo and key").click()
    )
    assert "bpm=" not in page.url
    assert page.locator("#results .hit .col.fit[data-fits]").count() == 0
    assert page.locator("#fit-controls").is_hidden()


def test_matched_audition_plays_the_rendition_for_the_project(sized: Page, served: Served) -> None:
    web = sized
    page = web.open("/?bpm=124")
    rows = web.search("bass loop")
    expected = served.api(
        "POST",
        "/v1/search/text",
        json={"query": "bass loop", "top_k": 50, "context": {"bpm": 124}},
    )
    loop = next(h for h in expected["hits"] if h["fit"]["audio_url"])
    assert "bpm=124" in loop["fit"]["audio_url"]
    row = page.locator(f'#results .hit[data-id="{loop["id"]}"]')
    assert page.locator("#match-project").is_checked()  # on by default
    row.locator(".play").click()
    page.wait_for_function(
        "(u) => { const a = document.querySelector('#player');"
        " return a.src.endsWith(u) && a.currentTime > 0.02; }",
        arg=loop["fit"]["audio_url"],
    )
    src = page.evaluate("document.querySelector('#player').src")
    assert re.search(r"/v1/items/[^/]+/audio\?bpm=124", src)
    # A drag out delivers the matched file too.
    dragged = page.evaluate(
        """(id) => {
            const li = document.querySelector(`#results .hit[data-id="${id}"]`);
            const dt = new DataTransfer();
            li.dispatchEvent(new DragEvent('dragstart', {dataTransfer: dt, bubbles: true}));
            return dt.getData('DownloadURL');
        }""",
        loop["id"],
    )
    assert dragged.startswith("audio/wav:") and dragged.endswith(loop["fit"]["audio_url"])
    assert "124 BPM" in dragged
    web.shot(f"matched-audition-{width_of(web)}")
    # The details offer the matched file beside the original.
    row.locator(".name").dblclick()
    link = page.locator("#details").get_by_role("link", name="Download matched")
    assert link.get_attribute("href") == loop["fit"]["audio_url"]
    assert (link.get_attribute("download") or "").endswith("(124 BPM).wav")
    page.keyboard.press("Escape")
    page.locator("#details").wait_for(state="hidden")
    # Off: the original (or its plain WAV rendition) plays again.
    page.uncheck("#match-project")
    row.locator(".play").click()  # stops
    row.locator(".play").click()
    page.wait_for_function(
        "() => { const a = document.querySelector('#player');"
        " return !a.src.includes('bpm=') && a.currentTime > 0.02; }"
    )
    assert rows.count() > 0 and web.overflow() == 0
