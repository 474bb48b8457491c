"""Item routes: an indexed sample's metadata and its audio file."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from app.deps import ServiceDep, require_read
from app.routes.common import audio_url, hit_out
from app.schemas import (
    HitOut,
)
from timbre.store.pathtext import path_text

router = APIRouter(dependencies=[Depends(require_read)])


@router.get("/v1/items/{item_id}", response_model=HitOut, tags=["items"])
async def item(item_id: str, request: Request, service: ServiceDep) -> HitOut:
    """One indexed sample and its metadata."""
    payload = await run_in_threadpool(service.item, item_id)
    return hit_out(audio_url(request), None, item_id, payload)


@router.get(
    "/v1/items/{item_id}/audio", name="item_audio", tags=["items"], response_class=FileResponse
)
async def item_audio(item_id: str, service: ServiceDep) -> FileResponse:
    """The original file of an indexed sample (supports HTTP range requests for seeking)."""
    path = await run_in_threadpool(service.item_file, item_id)
    # The header needs text: a name that is not UTF-8 goes as its stored form (pathtext).
    return FileResponse(path, filename=path_text(path.name), content_disposition_type="inline")
