"""Item routes: an indexed sample's metadata and its audio file."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from app.deps import ServiceDep, require_read
from app.files import AudioFileResponse
from app.openapi import problems
from app.routes.browse import MediaDep
from app.routes.common import audio_url, hit_out
from app.schemas import HitOut
from timbre.store.pathtext import path_text

router = APIRouter(
    dependencies=[Depends(require_read)], tags=["items"], responses=problems(401, 404, 503)
)

AUDIO_DOC = {
    "responses": {
        "200": {
            "description": "The file as it is on disk.",
            "content": {"audio/*": {"schema": {"type": "string", "format": "binary"}}},
        },
        "206": {
            "description": "The byte range asked for with a Range header.",
            "content": {"audio/*": {"schema": {"type": "string", "format": "binary"}}},
        },
    }
}

HEAD_DOC = {
    "responses": {
        "200": {"description": "The file's headers (size, type), without the file."},
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
    rendition: Literal["original", "wav"] = "original",
) -> AudioFileResponse:
    """The original file of a sample, or a WAV rendition for browsers (HTTP ranges work)."""
    # Both are sent from a file opened (and, for originals, checked) before the response: an
    # eviction or a replacement of the path meanwhile cannot change what is sent.
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
