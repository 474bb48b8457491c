"""What the browser tests share: the served app, the page wrapper and Chromium's flags.

One service over a small indexed library and one Chromium serve the whole package (the
fixtures in ``tests/browser/conftest.py``). Screenshots of the main views are written to
``<pytest basetemp>/screenshots`` (never committed); look at them after a change to the page.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.synthetic import Library

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is missing"),
]
"""Every browser test module's ``pytestmark``."""

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
        self.posts: list[tuple[str, str]] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("request", self._request)
        self.page.on("response", self._response)

    def _request(self, request: Any) -> None:
        self.requests.append(request.url)
        if request.method in ("POST", "PUT"):
            self.posts.append((request.url, request.post_data or ""))

    def bodies(self, path: str) -> list[Any]:
        """The JSON bodies the page sent to ``path`` (query string ignored), oldest first."""
        return [json.loads(b) for u, b in self.posts if u.split("?")[0].endswith(path) and b]

    def relisted(self, action: Callable[[], Any]) -> None:
        """Do ``action`` and wait until the list it asks for is shown."""
        with self.page.expect_response(lambda r: re.search(r"/v1/(search|browse)", r.url)):
            action()
        self.page.wait_for_selector("#results:not([aria-busy='true'])", state="attached")

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


def row_names(rows: Any) -> list[str]:
    return list(rows.locator(".name").all_inner_texts())
