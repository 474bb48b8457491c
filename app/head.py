"""``HEAD`` on every ``GET`` route: uptime checkers and link checkers ask with HEAD.

FastAPI routes answer only the methods they declare, so HEAD got 405 everywhere but the audio
route (which declares its own, to answer without reading the file). This middleware runs a
HEAD that no route declares as the GET it mirrors and sends its status and headers
(Content-Length included) without the body, as RFC 9110 (section 9.3.2) asks. The OpenAPI
document is unchanged: HEAD is implied by GET.
"""

from __future__ import annotations

from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    """ASGI middleware answering HEAD through the GET route of the same path.

    Args:
        app: the application.
        router: its router, to see whether a route declares HEAD itself.
    """

    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or self._declared(scope):
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # the rest of a streamed body: dropped
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)

    def _declared(self, scope: Scope) -> bool:
        """Whether a route (or a mount, which answers HEAD itself) takes this HEAD as it is."""
        return any(route.matches(scope)[0] == Match.FULL for route in self.router.routes)
