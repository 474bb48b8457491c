"""The audio file response: Starlette's FileResponse, with its Range errors as problems.

Starlette answers a Range it cannot serve with a bare text/plain 400 or 416. Here, per RFC
9110 (section 14.2): a range unit other than bytes is ignored (the whole file, 200), and byte
ranges that are invalid or that the file cannot satisfy get 416 with ``Content-Range:
bytes */size``, as a problem body like every other error.

A response may be given a file already open (a cached rendition): it then sends those bytes
whatever happens to the path meanwhile (a cache eviction, a replacement), and calls
``on_close`` once it is done with them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import BinaryIO

import anyio
from starlette.datastructures import Headers
from starlette.responses import FileResponse, MalformedRangeHeader, RangeNotSatisfiable
from starlette.types import Receive, Scope, Send

from app.problems import problem


class AudioFileResponse(FileResponse):
    def __init__(  # FileResponse's own parameters, spelled out: FastAPI reads status_code's
        self,
        path: str | Path,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        *,
        media_type: str | None = None,
        filename: str | None = None,
        content_disposition_type: str = "attachment",
        opened: BinaryIO | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(
            path,
            status_code=status_code,
            headers=headers,
            media_type=media_type,
            filename=filename,
            stat_result=None if opened is None else os.fstat(opened.fileno()),
            content_disposition_type=content_disposition_type,
        )
        self._opened = opened
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._respond(scope, receive, send)
        finally:
            if self._on_close is not None:
                self._on_close()

    async def _respond(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._opened is not None:  # the bytes come from the open file, never from the path
            extensions = {k: v for k, v in scope.get("extensions", {}).items()}
            extensions.pop("http.response.pathsend", None)
            scope = {**scope, "extensions": extensions}
        headers = Headers(scope=scope)
        http_range = headers.get("range")
        if http_range is not None and self.status_code == 200:
            if http_range.split("=", 1)[0].strip().lower() != "bytes":
                scope = {**scope, "headers": _without(scope["headers"], b"range")}
            else:
                size = (
                    self.stat_result.st_size
                    if self.stat_result is not None
                    else (await anyio.to_thread.run_sync(os.stat, self.path)).st_size
                )
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

    @asynccontextmanager
    async def _open_file(self) -> AsyncIterator[anyio.AsyncFile[bytes]]:
        if self._opened is None:
            async with super()._open_file() as file:
                yield file
            return
        self._opened.seek(0)
        yield anyio.wrap_file(self._opened)  # closed by on_close, once the response is done


def _without(raw: list[tuple[bytes, bytes]], name: bytes) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in raw if k.lower() != name]
