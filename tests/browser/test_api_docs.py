"""The page's "API" link: /docs renders the API reference with every request outside the
service blocked (offline, air-gapped), and asks for nothing from elsewhere."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import pytest

from tests.browser.helpers import BROWSER_MARKS, Page, Served

pytestmark = BROWSER_MARKS


@pytest.mark.parametrize(("width", "height"), [(1400, 900), (390, 844)], ids=["desktop", "phone"])
def test_the_api_reference_renders_with_the_network_blocked(
    browser: Any, served: Served, width: int, height: int
) -> None:
    web = Page(browser, served, width, height)
    own = urlparse(served.url).netloc
    elsewhere: list[str] = []

    def only_this_service(route: Any) -> None:
        if urlparse(route.request.url).netloc == own:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort("internetdisconnected")

    web.context.route("**/*", only_this_service)
    try:
        web.page.goto(served.url + "/")
        web.page.get_by_role("link", name="API").click()
        web.page.wait_for_selector("details.op")
        assert web.page.url == served.url + "/docs"
        ops = web.page.locator("details.op")
        paths = set(web.page.locator("details.op .path").all_inner_texts())
        assert {"/v1/search/text", "/v1/ingest", "/v1/facets"} <= paths
        assert ops.count() >= 15
        search = web.page.locator("details.op", has_text="/v1/search/text").first
        search.locator("summary").click()
        assert search.locator(".schema .name", has_text="query").first.is_visible()
        web.page.fill("#docs-filter", "facets")
        assert web.page.locator("details.op:visible").count() == 1
        web.page.fill("#docs-filter", "")
        assert web.overflow() <= 0, "the reference is wider than the screen"
        web.shot(f"api-docs-{width}")
        assert elsewhere == [], f"requests left the service: {elsewhere}"
        assert web.errors == [], web.errors
    finally:
        web.context.close()
