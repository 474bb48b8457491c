"""👍 and 👎 on the rows: the results are refined in place through /v1/search/recommend, the
examples stay as removable chips, and removing the last one returns to the plain search.
At a desktop's size and at a phone's (390 px).
"""

from __future__ import annotations

import re

from tests.browser.helpers import BROWSER_MARKS, Page, Served

pytestmark = BROWSER_MARKS


def ids(web: Page) -> list[str]:
    return [
        str(i)
        for i in web.page.evaluate(
            "() => [...document.querySelectorAll('#results .hit')].map((li) => li.dataset.id)"
        )
    ]


def name_of(web: Page, item_id: str) -> str:
    row = web.page.locator(f'#results .hit[data-id="{item_id}"]')
    return str(row.get_attribute("aria-label"))


def test_thumbs_refine_the_results_and_the_chips_undo_it(sized: Page, served: Served) -> None:
    web = sized
    page = web.open()
    web.search("kick")
    before = ids(web)
    liked = before[1]
    liked_name = name_of(web, liked)

    # 👍: more like this one, the words kept; the example leaves the list.
    row = page.locator(f'#results .hit[data-id="{liked}"]')
    web.relisted(lambda: row.get_by_role("button", name=re.compile("^👍 More like")).click())
    body = web.bodies("/v1/search/recommend")[-1]
    assert body["positive"] == [liked] and body["negative"] == [] and body["query"] == "kick"
    assert page.locator("#examples").is_visible()
    chip = page.locator("#examples .example.up")
    assert chip.inner_text().strip().startswith(liked_name)
    after_like = ids(web)
    assert liked not in after_like and after_like != before

    # 👎 on another: both examples go with the words.
    disliked = after_like[0]
    disliked_name = name_of(web, disliked)
    down = page.locator(f'#results .hit[data-id="{disliked}"]').get_by_role(
        "button", name=re.compile("^👎 Less like")
    )
    web.relisted(down.click)
    body = web.bodies("/v1/search/recommend")[-1]
    assert body["positive"] == [liked] and body["negative"] == [disliked]
    after_both = ids(web)
    assert disliked not in after_both and liked not in after_both
    assert page.locator("#examples .example").count() == 2
    assert "sample" in page.locator("#status").inner_text()
    assert web.overflow() == 0
    page.evaluate("window.scrollTo(0, 0)")
    web.shot(f"steering-{page.viewport_size['width']}")

    # Words with an exclusion go as typed (the service reads "-word").
    page.fill("#query", "kick -punchy")
    web.relisted(lambda: page.press("#query", "Enter"))
    assert web.bodies("/v1/search/recommend")[-1]["query"] == "kick -punchy"
    page.fill("#query", "kick")
    web.relisted(lambda: page.press("#query", "Enter"))

    # Removing the 👍 keeps steering away from the 👎; removing the last returns to the words.
    web.relisted(page.get_by_role("button", name=f"Remove 👍 {liked_name}").click)
    body = web.bodies("/v1/search/recommend")[-1]
    assert body["positive"] == [] and body["negative"] == [disliked]
    web.relisted(page.get_by_role("button", name=f"Remove 👎 {disliked_name}").click)
    assert page.locator("#examples").is_hidden()
    assert web.bodies("/v1/search/text")[-1]["query"] == "kick"
    assert ids(web) == before


def test_a_thumbs_down_alone_asks_for_words_or_a_thumbs_up(web: Page) -> None:
    page = web.open()
    page.get_by_role("button", name=re.compile("^All samples")).click()
    web.wait_status("sample")
    page.locator("#results .hit").nth(0).get_by_role("button", name=re.compile("^👎")).click()
    page.wait_for_selector("#message:not([hidden])")
    assert "type some words or give a 👍" in page.locator("#message").inner_text()
    assert page.locator("#examples").is_hidden()
    assert not any("/v1/search/recommend" in u for u in web.requests)


def test_plus_and_minus_steer_by_the_selected_row(web: Page) -> None:
    page = web.open()
    web.search("snare")
    page.uncheck("#autoplay")
    page.focus("#query")
    page.keyboard.press("ArrowDown")
    page.wait_for_function("() => document.activeElement.dataset.index === '0'")
    first = ids(web)[0]
    web.relisted(lambda: page.keyboard.press("+"))
    assert web.bodies("/v1/search/recommend")[-1]["positive"] == [first]
    page.locator("#results .hit").first.focus()
    second = ids(web)[0]
    web.relisted(lambda: page.keyboard.press("-"))
    body = web.bodies("/v1/search/recommend")[-1]
    assert body["positive"] == [first] and body["negative"] == [second]
    assert page.locator("#examples .example").count() == 2


def test_steering_keeps_the_project_and_its_fit(web: Page) -> None:
    page = web.open("/?bpm=124&key=Am")
    web.search("bass loop")
    row = page.locator("#results .hit").nth(1)
    web.relisted(lambda: row.get_by_role("button", name=re.compile("^👍")).click())
    assert web.bodies("/v1/search/recommend")[-1]["context"]["bpm"] == 124
    rows = page.locator("#results .hit")
    assert rows.count() > 0
    assert page.locator("#results .hit .col.fit[data-fits]").count() == rows.count()
