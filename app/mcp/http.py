"""``/mcp``: the MCP server over streamable HTTP, inside the API, behind the API's key rules.

Reads need the key only when ``api.require_key_for_reads``; a tool that writes needs it
whenever one is set. Against DNS rebinding: :class:`~app.middleware.HostGuard`, an ``Origin``
check and the SDK's transport security. Stateless: every tool is one request, one answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from typing import Any

from mcp.server import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from app.deps import presented_key, require_read, require_write
from app.mcp.backends import Backend, LocalBackend
from app.mcp.server import build_server
from app.middleware import allowed_hosts, sdk_hosts, sdk_origins
from app.problems import AuthError, problem
from app.routes.common import audio_url
from timbre.collections_db import Collections
from timbre.errors import UnavailableError
from timbre.search import SearchService
from timbre.settings import ApiSettings

PATH = "/mcp"


def _request(ctx: ServerRequestContext[Any]) -> Request:
    request = ctx.request
    if not isinstance(request, Request):  # the HTTP transport always attaches it
        raise UnavailableError("this MCP request did not come over HTTP")
    return request


class McpEndpoint:
    """The ASGI app mounted at ``/mcp``; :meth:`run` its session manager in the app's lifespan."""

    def __init__(self, service: SearchService, api: ApiSettings, collections: Collections) -> None:
        self.api = api

        def backend_for(ctx: ServerRequestContext[Any]) -> AbstractContextManager[Backend]:
            request = _request(ctx)
            # Audio URLs name the host this request reached, like the API's own hits.
            return nullcontext(LocalBackend(service, api, collections, audio_url(request)))

        async def guard_write(ctx: ServerRequestContext[Any]) -> None:
            require_write(api, *await presented_key(_request(ctx)))

        self.server = build_server(backend_for, guard_write=guard_write)
        names = allowed_hosts(api)
        self.security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=sdk_hosts(names),
            allowed_origins=sdk_origins(names, api.cors_origins),
        )
        self.manager: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        """Run a session manager (one per run of the app: a manager runs once) for the block."""
        self.manager = StreamableHTTPSessionManager(
            app=self.server, json_response=True, stateless=True, security_settings=self.security
        )
        try:
            async with self.manager.run():
                yield
        finally:
            self.manager = None

    def _foreign_origin(self, request: Request) -> str | None:
        origin = request.headers.get("origin")
        if origin is None:
            return None
        own = f"{request.url.scheme}://{request.url.netloc}"
        return None if origin in (own, *self.api.cors_origins) else origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        origin = self._foreign_origin(request)
        if origin is not None:
            refused = problem(
                403, "Forbidden origin", f"origin {origin!r} may not call /mcp", "forbidden_origin"
            )
            await refused(scope, receive, send)
            return
        try:
            require_read(self.api, *await presented_key(request))
        except AuthError as exc:
            refused = problem(
                401,
                "Unauthorized",
                str(exc),
                "unauthorized",
                headers={"WWW-Authenticate": "Bearer"},
            )
            await refused(scope, receive, send)
            return
        if self.manager is None:
            raise UnavailableError("the MCP endpoint runs only while the app does")
        await self.manager.handle_request(scope, receive, send)
