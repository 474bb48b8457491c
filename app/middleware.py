"""The ASGI middlewares around the routes: host and origin guard, body size cap, reroutes.

Against DNS rebinding, every route, page and mount answers only to the hosts of
:func:`allowed_hosts` (421 otherwise). Against cross-site writes, a browser's write whose
``Origin`` is neither the service's own nor one of ``api.cors_origins`` gets 403 (clients that
are not browsers send no ``Origin``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.problems import LEGACY_UPLOADS, MULTIPART, media_type, problem
from timbre.settings import ApiSettings

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
"""Host names every service answers to: they can only reach the machine it runs on."""

_ANY_ADDRESS = frozenset({"", "0.0.0.0", "::"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def host_name(host: str) -> str:
    """The name part of a ``Host`` value (``name:port``, ``[v6]:port``), lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    name = host.split(":", 1)[0] if host.count(":") == 1 else host
    return name.rstrip(".")  # "localhost." is localhost


def allowed_hosts(api: ApiSettings) -> frozenset[str]:
    """The host names the service answers to (lower case, without ports)."""
    names = {*LOOPBACK_NAMES, *(host_name(h) for h in api.allowed_hosts)}
    if host_name(api.host) not in _ANY_ADDRESS:
        names.add(host_name(api.host))
    return frozenset(names)


def sdk_hosts(names: Iterable[str]) -> list[str]:
    """``names`` as the MCP SDK's allow-list spells them: exact ``Host`` values, any port."""
    out = []
    for name in sorted(names):
        shown = f"[{name}]" if ":" in name else name
        out += [shown, f"{shown}:*"]
    return out


def sdk_origins(names: Iterable[str], cors_origins: Iterable[str]) -> list[str]:
    """The origins of ``names`` (http and https, any port) and the configured CORS origins."""
    out = []
    for host in sdk_hosts(names):
        out += [f"http://{host}", f"https://{host}"]
    return [*out, *cors_origins]


class HostGuard:
    """ASGI middleware refusing unknown ``Host`` values and foreign ``Origin`` on writes;
    ``on_problem(code)`` is called for each refusal (metrics)."""

    def __init__(
        self, app: ASGIApp, api: ApiSettings, on_problem: Callable[[str], None] | None = None
    ) -> None:
        self.app = app
        self.hosts = allowed_hosts(api)
        self.cors_origins = frozenset(o.rstrip("/") for o in api.cors_origins)
        self.on_problem = on_problem

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = None
        if scope["type"] in ("http", "websocket"):
            headers = Headers(scope=scope)
            host, origin = host_name(headers.get("host", "")), headers.get("origin")
            method = str(scope.get("method", "GET")).upper()
            if host not in self.hosts:
                refusal = self._refusal(
                    421,
                    "Unknown host",
                    f"this service does not answer to the host {host or '(none)'!r}; to reach "
                    "it under this name, add the name to api.allowed_hosts",
                    "unknown_host",
                )
            elif (
                origin is not None and method not in _SAFE_METHODS and not self._own(origin, scope)
            ):
                refusal = self._refusal(
                    403,
                    "Forbidden origin",
                    f"a page at {origin!r} may not write to this service; to allow it, add it "
                    "to api.cors_origins",
                    "forbidden_origin",
                )
        await (refusal or self.app)(scope, receive, send)

    def _own(self, origin: str, scope: Scope) -> bool:
        origin = origin.strip().rstrip("/")
        if origin in self.cors_origins:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False  # "null" (sandboxed frames, files) and anything else that is no page
        # The scheme is not compared: behind a TLS proxy the page is https and the request
        # that reaches the service plain http; one host and port is one server either way.
        own_host = Headers(scope=scope).get("host", "").strip().lower()
        return parts.netloc.lower() == own_host

    def _refusal(self, status: int, title: str, detail: str, code: str) -> JSONResponse:
        if self.on_problem is not None:
            self.on_problem(code)
        return problem(status, title, detail, code)


class BodyCap:
    """ASGI middleware refusing a body past its limit as it streams in (413), before a byte is
    read when its Content-Length says so: ``api.max_upload_bytes`` on paths ending in
    ``/upload``, ``api.max_body_bytes`` elsewhere. No more is buffered or spooled to disk."""

    def __init__(self, app: ASGIApp, api: ApiSettings) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"].endswith("/upload"):
            limit, what = self.api.max_upload_bytes, "uploads (the whole multipart body)"
        else:
            limit, what = self.api.max_body_bytes, "request bodies"
        too_large = HTTPException(413, f"{what} are limited to {limit} bytes")
        declared = Headers(scope=scope).get("content-length", "")
        received, started = 0, False

        async def capped() -> Message:
            nonlocal received
            if declared.isdigit() and int(declared) > limit:
                raise too_large
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise too_large
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, capped, tracked)
        except HTTPException as exc:  # read outside a route: the routes answer it themselves
            if exc is not too_large or started:
                raise
            await problem(413, "Payload too large", str(exc.detail), "too_large")(
                scope, receive, send
            )


class Reroute:
    """ASGI middleware answering a request through another route: a ``HEAD`` no route declares
    as the ``GET`` of its path, without the body (RFC 9110, 9.3.2); a multipart body posted to a
    path of :data:`~app.problems.LEGACY_UPLOADS` by that path's ``/upload`` route."""

    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif scope["method"] == "HEAD" and not self._declared(scope):

            async def headers_only(message: Message) -> None:
                if message["type"] == "http.response.body":
                    if message.get("more_body", False):
                        return  # the rest of a streamed body: dropped
                    message = {"type": "http.response.body", "body": b"", "more_body": False}
                await send(message)

            await self.app({**scope, "method": "GET"}, receive, headers_only)
        elif (
            scope["method"] == "POST"
            and scope["path"] in LEGACY_UPLOADS
            and media_type(Headers(scope=scope)) == MULTIPART
        ):
            await self.app({**scope, "path": scope["path"] + "/upload"}, receive, send)
        else:
            await self.app(scope, receive, send)

    def _declared(self, scope: Scope) -> bool:
        """Whether a route (or a mount, which answers HEAD itself) takes this HEAD as it is."""
        return any(route.matches(scope)[0] == Match.FULL for route in self.router.routes)
