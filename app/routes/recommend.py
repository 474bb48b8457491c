"""``POST /v1/search/recommend``: more like these samples, less like those (and words)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from app.deps import ApiDep, ServiceDep, paging, require_read
from app.openapi import BODY_PROBLEMS, problems
from app.routes.common import filter_of, fit_of, search_out
from app.schemas import SearchOut
from app.schemas.recommend import RecommendIn
from timbre.search import SearchResult, SearchService
from timbre.search.steer import Steering
from timbre.settings import ApiSettings

router = APIRouter(
    dependencies=[Depends(require_read)],
    tags=["search"],
    responses={**BODY_PROBLEMS, **problems(401, 503)},
)


def run_recommend(service: SearchService, api: ApiSettings, body: RecommendIn) -> SearchResult:
    """The recommend query ``body`` asks for, within the configured limits (also the MCP's)."""
    top_k, offset = paging(api, body.top_k, body.offset)
    steering = Steering(
        positive=tuple(body.positive),
        negative=tuple(body.negative),
        query=body.query,
        avoid=tuple(body.avoid or ()),
    )
    return service.recommend(
        steering,
        top_k=top_k,
        offset=offset,
        filter=filter_of(api, body.filter),
        fit=fit_of(service, body.context),
    )


@router.post("/v1/search/recommend", response_model=SearchOut, responses=problems(404))
async def search_recommend(
    body: RecommendIn, request: Request, service: ServiceDep, api: ApiDep
) -> SearchOut:
    """More like some samples (and a description), less like others (and some words); the
    example samples themselves are never among the hits."""
    return search_out(request, await run_in_threadpool(run_recommend, service, api, body))
