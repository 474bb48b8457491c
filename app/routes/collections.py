"""Favourites and collections: list, create, add, remove, delete, and export as a zip."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote, unquote_to_bytes

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.deps import require_read, require_write
from app.openapi import BODY_PROBLEMS, problems
from app.routes.common import (
    ProjectBpm,
    ProjectKey,
    audio_url,
    from_state,
    hit_out,
    project_from_query,
)
from app.schemas.collections import (
    NAME_MAX_CHARS,
    NAME_PATTERN,
    CollectionDetailOut,
    CollectionIdsIn,
    CollectionIn,
    CollectionItemOut,
    CollectionOut,
    CollectionsOut,
    MembershipsOut,
)
from timbre.collections_db import CollectionInfo
from timbre.errors import InvalidRequestError
from timbre.fit import ProjectContext
from timbre.search.collections import CollectionsService, CollectionView


def strict_path(request: Request) -> None:
    """Refuse a path whose percent-encoding is broken or is not UTF-8: decoded to U+FFFD,
    ``%FF`` and ``%FE`` would both name the collection "\ufffd"."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    text = raw.decode("latin-1")
    bad = _BROKEN_ESCAPE.search(text)
    if bad is not None:
        raise InvalidRequestError(
            f"the path holds {bad.group(0)!r}, not a percent-encoded byte (write % as %25)"
        )
    try:
        unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequestError(
            f"the path's percent-encoded bytes are not UTF-8 (byte 0x{exc.object[exc.start]:02X}"
            " after decoding); percent-encode collection names as UTF-8"
        ) from exc


_BROKEN_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2}).{0,2}")

read = APIRouter(
    dependencies=[Depends(strict_path), Depends(require_read)],
    tags=["collections"],
    responses=problems(401, 404, 422, 503),
)
write = APIRouter(
    dependencies=[Depends(strict_path), Depends(require_write)],
    tags=["collections"],
    responses={**BODY_PROBLEMS, **problems(401, 404, 409, 503, 507)},
)


CollectionsDep = Annotated[
    CollectionsService, Depends(from_state("collections", "collections are"))
]
CollectionName = Annotated[
    str, Path(max_length=NAME_MAX_CHARS, pattern=NAME_PATTERN, description="a collection")
]


def _info(info: CollectionInfo) -> CollectionOut:
    return CollectionOut.model_validate(info, from_attributes=True)


def _detail(request: Request, view: CollectionView) -> CollectionDetailOut:
    url = audio_url(request)
    items = []
    for item in view.items:
        extra: dict[str, Any] = {"added_at": item.added_at, "path_hint": item.path_hint}
        if item.payload is None:
            extra.update(id=item.id, missing=True)
        else:
            extra.update(hit_out(url, None, item.id, item.payload).model_dump())
        items.append(CollectionItemOut.model_validate(extra))
    return CollectionDetailOut(**_info(view.info).model_dump(), items=items)


@read.get("/v1/collections", response_model=CollectionsOut)
async def list_collections(collections: CollectionsDep) -> CollectionsOut:
    """Every collection with its size, favourites first."""
    infos = await run_in_threadpool(collections.db.list_all)
    return CollectionsOut(collections=[_info(i) for i in infos])


@write.post("/v1/collections", response_model=CollectionOut, status_code=201)
async def create_collection(body: CollectionIn, collections: CollectionsDep) -> CollectionOut:
    """Create an empty collection (409 if the name is taken, in any case)."""
    return _info(await run_in_threadpool(collections.db.create, body.name))


@read.get("/v1/collections/{name}", response_model=CollectionDetailOut)
async def get_collection(
    name: CollectionName, request: Request, collections: CollectionsDep
) -> CollectionDetailOut:
    """A collection and its samples in the order added (ones no longer indexed: missing)."""
    return _detail(request, await run_in_threadpool(collections.get, name))


@write.post("/v1/collections/{name}/items", response_model=CollectionDetailOut)
async def add_items(
    name: CollectionName, body: CollectionIdsIn, request: Request, collections: CollectionsDep
) -> CollectionDetailOut:
    """Add indexed samples to a collection, creating it if missing."""
    return _detail(request, await run_in_threadpool(collections.add, name, body.ids))


@write.delete("/v1/collections/{name}/items/{item_id}", response_model=CollectionDetailOut)
async def remove_item(
    name: CollectionName, item_id: str, request: Request, collections: CollectionsDep
) -> CollectionDetailOut:
    """Take a sample out of a collection."""
    return _detail(request, await run_in_threadpool(collections.remove, name, [item_id]))


@write.delete("/v1/collections/{name}", status_code=204)
async def delete_collection(name: CollectionName, collections: CollectionsDep) -> Response:
    """Delete a collection (the favourites always stay)."""
    await run_in_threadpool(collections.db.delete, name)
    return Response(status_code=204)


@read.get(
    "/v1/collections/{name}/export.zip",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}}, **problems(409)},
)
async def export_collection(
    name: CollectionName,
    collections: CollectionsDep,
    bpm: ProjectBpm = None,
    key: ProjectKey = None,
) -> StreamingResponse:
    """A zip of the original files in one folder named after the collection, streamed. With
    the project's ``bpm`` and/or ``key``, each sample off them goes in as its rendition at the
    project's tempo and key (a WAV named ``Loop (124 BPM, -2 st).wav``), as the page's
    matched audition plays it; what has no tempo or key to match goes in as it is."""
    given = project_from_query(bpm=bpm, key=key)
    project = None if given is None else ProjectContext.of(given.bpm, given.key)
    plan = await run_in_threadpool(collections.plan_export, name, project)
    filename = f"{plan.folder}.zip"
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    return StreamingResponse(
        collections.export_zip(plan),
        media_type="application/zip",
        headers={"Content-Disposition": disposition, "X-Timbre-Missing": str(len(plan.missing))},
    )


@read.get("/v1/memberships", response_model=MembershipsOut)
async def memberships(
    collections: CollectionsDep, id: Annotated[list[str], Query(max_length=500)]
) -> MembershipsOut:
    """Which collections hold each of the given samples (for stars and badges on a page)."""
    return MembershipsOut(memberships=await run_in_threadpool(collections.memberships, id))
