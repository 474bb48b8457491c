"""The audio file response: Starlette's FileResponse, with its Range errors as problems.

Starlette answers a Range it cannot serve with a bare text/plain 400 or 416. Here, per RFC
9110 (section 14.2): a range unit other than bytes is ignored (the whole file, 200), and byte
ranges that are invalid or that the file cannot satisfy get 416 with ``Content-Range:
bytes */size``, as a problem body like every other error.
"""

from __future__ import annotations

import os

import anyio
from starlette.datastructures import Headers
from starlette.responses import FileResponse, MalformedRangeHeader, RangeNotSatisfiable
from starlette.types import Receive, Scope, Send

from app.problems import problem


class AudioFileResponse(FileResponse):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        http_range = headers.get("range")
        if http_range is not None and self.status_code == 200:
            if http_range.split("=", 1)[0].strip().lower() != "bytes":
                scope = {**scope, "headers": _without(scope["headers"], b"range")}
            else:
                size = (await anyio.to_thread.run_sync(os.stat, self.path)).st_size
                try:
                    self._parse_range_header(http_range, size)
                except (MalformedRangeHeader, RangeNotSatisfiable) as exc:
                    reason = getattr(exc, "content", None) or "the file holds no such bytes"
                    response = problem(
                        416,
                        "Range not satisfiable",
                        f"Range {http_range!r}: {reason} (the file has {size} bytes)",
                        "range_not_satisfiable",
                        headers={"Content-Range": f"bytes */{size}"},
                    )
                    await response(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)


def _without(raw: list[tuple[bytes, bytes]], name: bytes) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in raw if k.lower() != name]
