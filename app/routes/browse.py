"""Browsing routes: waveform peaks, an item's full payload, and folder listings."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from app.deps import ApiDep, paging, require_read
from app.openapi import BODY_PROBLEMS, problems
from app.routes.common import (
    ProjectBpm,
    ProjectKey,
    audio_url,
    filter_of,
    from_state,
    hit_out,
    project_from_query,
)
from app.schemas.browse import BrowseIn, FoldersOut, ItemDuplicatesOut, PayloadOut, PeaksOut
from app.schemas.fit import ProjectIn
from app.schemas.search import SearchOut
from timbre.search.browse import BrowseService
from timbre.search.fitting import SortBy
from timbre.search.media import MediaService

router = APIRouter(dependencies=[Depends(require_read)], responses=problems(401, 404, 503))


MediaDep = Annotated[MediaService, Depends(from_state("media", "waveforms and renditions are"))]
BrowseDep = Annotated[BrowseService, Depends(from_state("browse", "browsing is"))]


@router.get(
    "/v1/items/{item_id}/peaks", response_model=PeaksOut, tags=["items"], responses=problems(422)
)
async def item_peaks(item_id: str, media: MediaDep) -> PeaksOut:
    """The waveform of a sample: 200 peaks, stored at ingest or computed once and cached."""
    result = await run_in_threadpool(media.peaks, item_id)
    return PeaksOut(
        id=result.id,
        buckets=int(result.peaks.size),
        peaks=[int(v) for v in result.peaks],
        duration_s=result.duration_s,
        source=result.source,  # type: ignore[arg-type]
    )


@router.get("/v1/items/{item_id}/payload", response_model=PayloadOut, tags=["items"])
async def item_payload(item_id: str, request: Request, browser: BrowseDep) -> PayloadOut:
    """Every stored field of a sample (for a details view)."""
    payload = await run_in_threadpool(browser.payload, item_id)
    return PayloadOut(id=item_id, payload=payload, audio_url=audio_url(request)(item_id, {}))


@router.get("/v1/items/{item_id}/duplicates", response_model=ItemDuplicatesOut, tags=["items"])
async def item_duplicates(item_id: str, request: Request, browser: BrowseDep) -> ItemDuplicatesOut:
    """The near-duplicates of one sample (the duplicate report's rules), and which to keep."""
    found = await run_in_threadpool(browser.duplicates, item_id)
    url = audio_url(request)
    return ItemDuplicatesOut(
        id=item_id,
        keep=found.keep,
        min_cosine=browser.library.limits.duplicate_rules.min_cosine,
        hits=[hit_out(url, h, h.id, h.payload) for h in found.hits],
        layers=[hit_out(url, h, h.id, h.payload) for h in found.layers],
    )


def project_params(
    bpm: ProjectBpm = None,
    key: ProjectKey = None,
    sort: Annotated[
        SortBy | None,
        Query(description="'fit': the samples that fit first (with a bpm or a key)"),
    ] = None,
    only_fitting: Annotated[
        bool | None, Query(description="only the samples that fit (with a bpm or a key)")
    ] = None,
) -> ProjectIn | None:
    """The project context given as query parameters (the page's URL carries them)."""
    return project_from_query(bpm=bpm, key=key, sort=sort, only_fitting=only_fitting)


ProjectParams = Annotated[ProjectIn | None, Depends(project_params)]


@router.post("/v1/browse", response_model=SearchOut, tags=["search"], responses=BODY_PROBLEMS)
async def browse(
    body: BrowseIn, request: Request, browser: BrowseDep, api: ApiDep, params: ProjectParams
) -> SearchOut:
    """The samples matching a filter (a folder, a pack...) in path order, without a query;
    with a project context (query parameters), how each fits it, the fitting ones first if
    asked (each group in path order)."""
    top_k, offset = paging(api, body.top_k, body.offset)
    tolerance = browser.library.limits.tempo_tolerance_pct
    fit = None if params is None else params.query(tolerance)
    page = await run_in_threadpool(
        browser.browse, filter_of(api, body.filter), limit=top_k, offset=offset, fit=fit
    )
    request.state.engine = "qdrant"
    url = audio_url(request)
    query: dict[str, Any] = {
        "browse": body.filter.model_dump(exclude_none=True) if body.filter else {}
    }
    if fit is not None:
        query["context"] = fit.describe()
    return SearchOut(
        engine="qdrant",
        took_ms=round(page.took_ms, 3),
        query=query,
        hits=[hit_out(url, None, item_id, payload, fit) for item_id, payload in page.items],
        total=page.total,
    )


@router.get("/v1/folders", response_model=FoldersOut, tags=["library"])
async def folders(
    browser: BrowseDep,
    under: Annotated[
        str | None, Query(description="a folder of the library (its top when omitted)")
    ] = None,
) -> dict[str, Any]:
    """The folders directly under a folder of the library, with their sample counts."""
    return await run_in_threadpool(browser.folders, under)
