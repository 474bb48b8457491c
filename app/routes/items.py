"""Item routes: an indexed sample's metadata and its audio file.

The file goes as Starlette's FileResponse, with its Range errors as problems: a range unit
other than bytes is ignored (the whole file, 200), and byte ranges that are invalid or that the
file cannot satisfy get 416 with ``Content-Range: bytes */size`` (RFC 9110, section 14.2).
``bpm`` and ``semitones`` ask for a rendition matched to a project (docs/audition.md), whose
``X-Timbre-*`` headers say what was matched.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, BinaryIO, Literal

import anyio
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import FileResponse, MalformedRangeHeader, RangeNotSatisfiable
from starlette.types import Receive, Scope, Send

from app.deps import ServiceDep, require_read
from app.openapi import problems
from app.problems import problem
from app.routes.browse import MediaDep
from app.routes.common import audio_url, hit_out
from app.schemas import HitOut
from timbre.search.media import MAX_PROJECT_BPM, Matching
from timbre.store.pathtext import path_text

router = APIRouter(
    dependencies=[Depends(require_read)], tags=["items"], responses=problems(401, 404, 503)
)


class AudioFileResponse(FileResponse):
    """Sends a file already ``opened`` when given one (whatever happens to the path meanwhile:
    a cache eviction, a replacement), and calls ``on_close`` once done with it."""

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
            extensions = scope.get("extensions", {}).items()
            scope = {
                **scope,
                "extensions": {k: v for k, v in extensions if k != "http.response.pathsend"},
            }
        http_range = Headers(scope=scope).get("range")
        if http_range is not None and self.status_code == 200:
            if http_range.split("=", 1)[0].strip().lower() != "bytes":
                kept = [(k, v) for k, v in scope["headers"] if k.lower() != b"range"]
                scope = {**scope, "headers": kept}
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


_FILE = {"audio/*": {"schema": {"type": "string", "format": "binary"}}}
_TEXT = {"schema": {"type": "string"}}
MATCH_HEADERS = {
    "X-Timbre-Matched": {
        "description": "What a matched rendition carries, e.g. `bpm=124, semitones=-2`.",
        **_TEXT,
    },
    "X-Timbre-Unmatched": {
        "description": "What was asked but not done, e.g. `bpm (no tempo)` for a one-shot.",
        **_TEXT,
    },
    "X-Timbre-Stretch": {
        "description": "The rendition's length over the item's (1: tempo kept).",
        **_TEXT,
    },
    "X-Timbre-Source-Bpm": {"description": "The item's own tempo, when bpm was asked.", **_TEXT},
}
AUDIO_DOC = {
    "responses": {
        "200": {
            "description": "The file as it is on disk, or the rendition asked for.",
            "content": _FILE,
            "headers": MATCH_HEADERS,
        },
        "206": {
            "description": "The byte range asked for with a Range header.",
            "content": _FILE,
            "headers": MATCH_HEADERS,
        },
    }
}
HEAD_DOC = {
    "responses": {
        "200": {
            "description": "The file's headers (size, type), without the file.",
            "headers": MATCH_HEADERS,
        },
        "206": {"description": "The headers of the byte range asked for."},
    }
}


@router.get("/v1/items/{item_id}", response_model=HitOut)
async def item(item_id: str, request: Request, service: ServiceDep) -> HitOut:
    """One indexed sample and its metadata."""
    payload = await run_in_threadpool(service.library.item, item_id)
    return hit_out(audio_url(request), None, item_id, payload)


@router.head(
    "/v1/items/{item_id}/audio",
    name="item_audio_head",
    response_class=AudioFileResponse,
    responses=problems(416),
    openapi_extra=HEAD_DOC,
)
@router.get(
    "/v1/items/{item_id}/audio",
    name="item_audio",
    response_class=AudioFileResponse,
    responses=problems(416),
    openapi_extra=AUDIO_DOC,
)
async def item_audio(
    item_id: str,
    service: ServiceDep,
    media: MediaDep,
    *,
    rendition: Annotated[
        Literal["original", "wav"] | None,
        Query(description="`wav`: a WAV rendition for browsers; the original file when omitted"),
    ] = None,
    bpm: Annotated[
        float | None,
        Query(
            gt=0,
            le=MAX_PROJECT_BPM,
            allow_inf_nan=False,
            description="Project tempo: a loop plays stretched to it (or to twice or half "
            "it, whichever is nearest), its pitch kept",
        ),
    ] = None,
    semitones: Annotated[
        int,
        Query(ge=-12, le=12, description="Transposition, its tempo kept"),
    ] = 0,
) -> AudioFileResponse:
    """The original file of a sample, a WAV rendition for browsers, or a WAV rendition matched
    to a project's tempo (``bpm``) and key (``semitones``); HTTP ranges work on all."""
    # All are sent from a file opened (and, for originals, checked) before the response: an
    # eviction or a replacement of the path meanwhile cannot change what is sent.
    if bpm is not None or semitones:  # always a WAV rendition, whatever ``rendition`` says
        matched = await run_in_threadpool(
            lambda: media.matched_rendition(item_id, bpm=bpm, semitones=semitones)
        )
        return AudioFileResponse(
            matched.path,
            headers=_match_headers(matched.matching),
            filename=matched.name,
            media_type="audio/wav",
            content_disposition_type="inline",
            opened=matched.handle,
            on_close=matched.close,
        )
    if rendition == "wav":
        wav = await run_in_threadpool(media.wav_rendition, item_id)
        return AudioFileResponse(
            wav.path,
            filename=wav.name,
            media_type="audio/wav",
            content_disposition_type="inline",
            opened=wav.handle,
            on_close=wav.close,
        )
    path, handle = await run_in_threadpool(service.library.open_item_file, item_id)
    # The header needs text: a name that is not UTF-8 goes as its stored form (pathtext).
    return AudioFileResponse(
        path,
        filename=path_text(path.name),
        content_disposition_type="inline",
        opened=handle,
        on_close=handle.close,
    )


def _match_headers(matching: Matching | None) -> dict[str, str]:
    """The ``X-Timbre-*`` headers of a matched rendition (docs/audition.md)."""
    if matching is None:
        return {}
    headers = {"X-Timbre-Stretch": f"{matching.stretch:g}"}
    if matching.matched:
        headers["X-Timbre-Matched"] = ", ".join(matching.matched)
    if matching.unmatched:
        headers["X-Timbre-Unmatched"] = ", ".join(matching.unmatched)
    if matching.source_bpm is not None:
        headers["X-Timbre-Source-Bpm"] = f"{matching.source_bpm:g}"
    return headers
