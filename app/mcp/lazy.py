"""``/mcp`` mounted at once and built on its first request, so the service starts without it.

Importing the MCP SDK takes over a second holding the GIL (delaying readiness even in the
background) and ~50 MB that a service nobody reaches over MCP never needs. The first request
builds the endpoint (:mod:`app.mcp.http`) in a worker thread; requests meanwhile wait for it,
and get a 503 problem naming the cause if the build failed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from app.problems import problem

if TYPE_CHECKING:
    from app.mcp.http import McpEndpoint

PATH = "/mcp"

log = logging.getLogger(__name__)


class LazyMcp:
    """The ASGI app at ``/mcp``: waits for the endpoint ``build`` makes (called once, in a
    worker thread), then hands over to it."""

    def __init__(self, build: Callable[[], McpEndpoint]) -> None:
        self._build = build
        self._endpoint: McpEndpoint | None = None
        self.error: str | None = None
        self._ready: asyncio.Event | None = None  # set while the app runs (:meth:`running`)
        self._wanted = asyncio.Event()  # a request came (or the app stops)
        self._stop = asyncio.Event()
        self.builds = 0

    @property
    def ready(self) -> bool:
        return self._endpoint is not None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """On the first request, build the endpoint; run its session manager while the block
        lasts, in a task of its own (anyio enters and leaves a task group in one task). A
        session manager runs once, so each run of the app builds its own endpoint."""
        self._ready, self._stop, self.error = asyncio.Event(), asyncio.Event(), None
        self._wanted = asyncio.Event()
        task = asyncio.create_task(
            self._serve(self._ready, self._wanted, self._stop), name="mcp-endpoint"
        )
        try:
            yield
        finally:
            self._stop.set()
            self._wanted.set()
            await task
            self._ready = None

    async def _serve(
        self, ready: asyncio.Event, wanted: asyncio.Event, stop: asyncio.Event
    ) -> None:
        await wanted.wait()
        if stop.is_set():
            ready.set()
            return
        self.builds += 1
        try:
            endpoint = await run_in_threadpool(self._build)
        except Exception as exc:  # any import or build failure: reported, /mcp answers 503
            log.exception("the MCP endpoint could not be built")
            self.error = f"{type(exc).__name__}: {exc}"
            ready.set()
            return
        async with endpoint.run():
            self._endpoint = endpoint
            ready.set()
            await stop.wait()
            self._endpoint = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._ready is not None:
            self._wanted.set()
            await self._ready.wait()
        if self._endpoint is None:
            detail = f"the MCP endpoint is not available: {self.error or 'the app is not running'}"
            await problem(503, "Service unavailable", detail, "unavailable")(scope, receive, send)
            return
        await self._endpoint(scope, receive, send)
