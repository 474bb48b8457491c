"""DNS rebinding and cross-site writes: every request must name a host this service answers
to, and a browser's write must come from this service's own page (or a configured origin).

A rebinding page on ``http://evil.example`` makes the visitor's browser resolve that name to
127.0.0.1: the browser then treats the service as part of evil.example and lets the page read
it. What gives it away is the ``Host`` header, which still says evil.example. So every route
(the API, the page, ``/mcp``, the static files) answers only to the hosts of
:func:`allowed_hosts`: the loopback names, the host the service is bound to, and
``api.allowed_hosts``. Anything else gets 421 before any route runs.

A browser also sends ``Origin`` with cross-site writes. A write (any method but GET, HEAD and
OPTIONS) that carries an ``Origin`` other than the service's own (the ``Host`` it reached,
any scheme) or one of ``api.cors_origins`` is refused with 403: a page elsewhere cannot post
to the service, even to a loopback name. Clients that are not browsers send no ``Origin``
and are unaffected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from app.problems import problem
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
    """ASGI middleware refusing unknown ``Host`` values and foreign ``Origin`` on writes.

    Args:
        app: the application.
        api: the ``api`` settings (host, ``allowed_hosts``, ``cors_origins``).
        on_problem: called with the problem code of each refusal (metrics).
    """

    def __init__(
        self, app: ASGIApp, api: ApiSettings, on_problem: Callable[[str], None] | None = None
    ) -> None:
        self.app = app
        self.hosts = allowed_hosts(api)
        self.cors_origins = frozenset(o.rstrip("/") for o in api.cors_origins)
        self.on_problem = on_problem

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if host_name(host) not in self.hosts:
            shown = host_name(host) or "(none)"
            refusal = self._refusal(
                421,
                "Unknown host",
                f"this service does not answer to the host {shown!r}; to reach it under this "
                "name, add the name to api.allowed_hosts",
                "unknown_host",
            )
            await refusal(scope, receive, send)
            return
        origin = headers.get("origin")
        method = str(scope.get("method", "GET")).upper()
        if origin is not None and method not in _SAFE_METHODS and not self._own(origin, scope):
            refusal = self._refusal(
                403,
                "Forbidden origin",
                f"a page at {origin!r} may not write to this service; to allow it, add it to "
                "api.cors_origins",
                "forbidden_origin",
            )
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

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
