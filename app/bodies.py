"""Request bodies: one ASGI guard for their media type and size, applied to every route.

Each route's rule is read from the app's own OpenAPI document: the media types of its
``requestBody`` (a FastAPI body parameter, or a hand-declared body, see
:func:`app.openapi.json_or_upload_body`); ``multipart/form-data`` among them means it takes
uploads, under the upload limit instead of the JSON one. New routes get the guard without doing
anything; an upload route only declares its body. Paths the document does not list (mounts,
the page) get the JSON size cap.

The limit holds while the body streams in: a declared ``Content-Length`` over it is refused
before anything is read, and a chunked body is refused as soon as the bytes received pass it,
so no more than the limit is ever buffered in memory or spooled to the temp dir.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.problems import PayloadTooLargeError, problem, unsupported_media

JSON = "application/json"
MULTIPART = "multipart/form-data"


@dataclass(frozen=True)
class BodyRule:
    """What an operation takes as a body: its media types (none = it reads no body)."""

    media_types: tuple[str, ...]

    @property
    def uploads(self) -> bool:
        return MULTIPART in self.media_types


ANY_BODY = BodyRule((JSON,))  # paths the document does not list: only the JSON size cap applies

Rules = list[tuple[re.Pattern[str], str, BodyRule]]


def body_rules(openapi: dict[str, Any]) -> Rules:
    """(path pattern, method, rule) of every documented operation, fixed paths first."""
    rules: Rules = []
    paths = sorted(openapi.get("paths", {}).items(), key=lambda item: item[0].count("{"))
    for template, item in paths:
        pattern = re.compile(
            "".join(
                "[^/]+" if part.startswith("{") else re.escape(part)
                for part in re.split(r"(\{[^}]+\})", template)
            )
        )
        for method, operation in item.items():
            content = (operation.get("requestBody") or {}).get("content") or {}
            rules.append((pattern, method.upper(), BodyRule(tuple(content))))
    return rules


def media_type(headers: Headers) -> str | None:
    value = headers.get("content-type")
    return value.split(";", 1)[0].strip().lower() if value else None


def _accepts(rule: BodyRule, media: str | None) -> bool:
    if media is None:
        return False
    if media == JSON or (media.startswith("application/") and media.endswith("+json")):
        return JSON in rule.media_types
    return media in rule.media_types


class BodyGuard:
    """Refuses bodies in a media type the route does not take (415) or over its limit (413)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        openapi: Callable[[], dict[str, Any]],
        json_limit_bytes: int,
        upload_limit_bytes: int,
        on_problem: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self._openapi = openapi
        self._json_limit = json_limit_bytes
        self._upload_limit = upload_limit_bytes
        self._on_problem = on_problem
        self._rules: Rules | None = None

    def _rule(self, scope: Scope) -> BodyRule:
        if self._rules is None:  # built on the first request: every route is in place by then
            self._rules = body_rules(self._openapi())
        path, method = scope["path"], scope["method"]
        for pattern, rule_method, rule in self._rules:
            if rule_method == method and pattern.fullmatch(path):
                return rule
        return ANY_BODY

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, code: str, response: Response
    ) -> None:
        if self._on_problem is not None:
            self._on_problem(code)
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = self._rule(scope)
        if not rule.media_types:  # the route never reads a body, so none can pile up
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = _content_length(headers)
        has_body = bool(length) or "transfer-encoding" in headers
        media = media_type(headers)
        if has_body and rule is not ANY_BODY and not _accepts(rule, media):
            got = media or "no Content-Type"
            detail = f"send the body as {' or '.join(rule.media_types)}, not {got}"
            response = unsupported_media(detail, list(rule.media_types))
            await self._refuse(scope, receive, send, "unsupported_media_type", response)
            return
        if rule.uploads and media == MULTIPART:
            limit, what = self._upload_limit, "uploads (the whole multipart body)"
        else:
            limit, what = self._json_limit, "request bodies"
        detail = f"{what} are limited to {limit} bytes"
        if length is not None and length > limit:
            await self._refuse(scope, receive, send, "too_large", _too_large(detail))
            return
        await self._guarded(scope, receive, send, limit, detail)

    async def _guarded(
        self, scope: Scope, receive: Receive, send: Send, limit: int, detail: str
    ) -> None:
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLargeError(detail)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except PayloadTooLargeError:
            # Read outside a route (the routes' handlers answer it themselves as a problem).
            if started:
                raise
            await self._refuse(scope, receive, send, "too_large", _too_large(detail))


def _too_large(detail: str) -> Response:
    return problem(413, "Payload too large", detail, "too_large")


def _content_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None
