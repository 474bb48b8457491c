"""A live service for tests that need a real HTTP client (a browser, an MCP client, a
subprocess): the app under uvicorn on a free loopback port, in a thread of the test process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.support.api_fixtures import READY_WITHIN_S
from timbre.cli.wiring import build_app
from timbre.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_app(app: Any, ready: str = "/readyz") -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its URL once ``ready`` answers 200 (a
    service with nothing indexed is never ready: wait for ``/healthz`` then)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_WITHIN_S
    try:
        while True:
            try:
                if httpx.get(f"{url}{ready}", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the service was not ready after {READY_WITHIN_S:.0f} s")
            time.sleep(0.2)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@contextmanager
def live_service(settings: Settings) -> Iterator[str]:
    """``timbre serve``'s app for ``settings``, served as :func:`live_app` does."""
    with live_app(build_app(settings)) as url:
        yield url
