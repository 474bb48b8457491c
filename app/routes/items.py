"""Item routes: an indexed sample's metadata and its audio file."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from app.deps import ServiceDep, require_read
from app.routes.browse import MediaDep
from app.routes.common import audio_url, hit_out
from app.schemas import (
    HitOut,
)

router = APIRouter(dependencies=[Depends(require_read)])


@router.get("/v1/items/{item_id}", response_model=HitOut, tags=["items"])
async def item(item_id: str, request: Request, service: ServiceDep) -> HitOut:
    """One indexed sample and its metadata."""
    payload = await run_in_threadpool(service.item, item_id)
    return hit_out(audio_url(request), None, item_id, payload)


@router.get(
    "/v1/items/{item_id}/audio", name="item_audio", tags=["items"], response_class=FileResponse
)
async def item_audio(
    item_id: str,
    service: ServiceDep,
    media: MediaDep,
    rendition: Literal["original", "wav"] = "original",
) -> FileResponse:
    """The original file of a sample, or a WAV rendition for browsers (HTTP ranges work)."""
    if rendition == "wav":
        wav, name = await run_in_threadpool(media.wav_rendition, item_id)
        return FileResponse(
            wav, filename=name, media_type="audio/wav", content_disposition_type="inline"
        )
    path = await run_in_threadpool(service.item_file, item_id)
    return FileResponse(path, filename=path.name, content_disposition_type="inline")
