"""Search routes: text, audio (id, path or upload), hybrid and batch."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from app.bodies import MULTIPART, media_type
from app.deps import ApiDep, ServiceDep, paging, require_read
from app.openapi import BODY_PROBLEMS, json_or_upload_body, problems
from app.problems import parse_json
from app.routes.common import as_request_error, filter_of, search_out
from app.schemas import (
    AudioSearchIn,
    BatchOut,
    BatchResultOut,
    BatchSearchIn,
    EmptySlotOut,
    HybridSearchIn,
    SearchOut,
    TextSearchIn,
)
from timbre.errors import InvalidRequestError
from timbre.search import AudioRef, BatchQuery, SearchResult
from timbre.settings import ApiSettings

M = TypeVar("M", bound=AudioSearchIn)

router = APIRouter(
    dependencies=[Depends(require_read)],
    tags=["search"],
    responses={**BODY_PROBLEMS, **problems(401, 503)},
)

_FORM = {
    "top_k": {"type": "integer", "minimum": 1},
    "offset": {"type": "integer", "minimum": 0},
    "filter": {"$ref": "#/components/schemas/FilterIn"},
}
AUDIO_BODY = json_or_upload_body(AudioSearchIn, _FORM, required=[])
HYBRID_BODY = json_or_upload_body(
    HybridSearchIn,
    {name: HybridSearchIn.model_json_schema()["properties"][name] for name in ("query", "alpha")}
    | _FORM,
    required=["query"],
)


async def _audio_body(request: Request, model: type[M]) -> tuple[M, AudioRef]:
    """Parse a JSON body (id or path) or a multipart upload into the model and a reference.

    The body guard (app/bodies.py) has already refused other media types and bodies over
    their limit; what is left to check here is the content.
    """
    if media_type(request.headers) != MULTIPART:
        try:
            body = model.model_validate(parse_json(await request.body()))
        except ValidationError as exc:
            raise as_request_error(exc) from exc
        return body, AudioRef(id=body.id, path=body.path)
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise InvalidRequestError("file: a multipart upload needs a 'file' part")
    fields: dict[str, Any] = {k: v for k, v in form.items() if k != "file"}
    for name in ("id", "path"):
        if name in fields:  # an upload is the reference: a second one would be ignored
            raise InvalidRequestError(f"{name}: give an uploaded file or an {name}, not both")
    if not all(isinstance(v, str) for v in fields.values()):
        raise InvalidRequestError("file: upload one file; the other parts are text fields")
    if "filter" in fields:
        fields["filter"] = parse_json(fields["filter"], "filter")
    try:
        body = model.model_validate({**fields, "id": "upload"})
    except ValidationError as exc:
        raise as_request_error(exc) from exc
    data = await upload.read()
    return body, AudioRef(upload=data, upload_name=upload.filename or "upload")


@router.post("/v1/search/text", response_model=SearchOut)
async def search_text(
    body: TextSearchIn, request: Request, service: ServiceDep, api: ApiDep
) -> SearchOut:
    """Find samples that sound like a description."""
    top_k, offset = paging(api, body.top_k, body.offset)
    result = await run_in_threadpool(
        service.search_text,
        body.query,
        top_k=top_k,
        offset=offset,
        filter=filter_of(api, body.filter),
    )
    return search_out(request, result)


@router.post(
    "/v1/search/audio",
    response_model=SearchOut,
    responses=problems(403, 404),
    openapi_extra=AUDIO_BODY,
)
async def search_audio(request: Request, service: ServiceDep, api: ApiDep) -> SearchOut:
    """Find samples that sound like a reference: an indexed id, a server path, or an upload."""
    body, ref = await _audio_body(request, AudioSearchIn)
    top_k, offset = paging(api, body.top_k, body.offset)
    result = await run_in_threadpool(
        service.search_audio, ref, top_k=top_k, offset=offset, filter=filter_of(api, body.filter)
    )
    return search_out(request, result)


@router.post(
    "/v1/search/hybrid",
    response_model=SearchOut,
    responses=problems(403, 404),
    openapi_extra=HYBRID_BODY,
)
async def search_hybrid(request: Request, service: ServiceDep, api: ApiDep) -> SearchOut:
    """Mix a description and a reference sound: alpha = weight of the text."""
    body, ref = await _audio_body(request, HybridSearchIn)
    top_k, offset = paging(api, body.top_k, body.offset)
    result = await run_in_threadpool(
        service.search_hybrid,
        body.query,
        ref,
        alpha=body.alpha,
        top_k=top_k,
        offset=offset,
        filter=filter_of(api, body.filter),
    )
    return search_out(request, result)


def batch_queries(body: BatchSearchIn, api: ApiSettings) -> list[BatchQuery]:
    """The service's queries of a batch: limits applied, each with the shared context."""
    if len(body.queries) > api.max_batch:
        raise InvalidRequestError(f"queries: at most {api.max_batch} per batch")
    context = filter_of(api, body.context)
    queries = []
    for item in body.queries:
        top_k, offset = paging(api, item.top_k, item.offset)
        own = filter_of(api, item.filter)
        queries.append(BatchQuery(item.query, top_k, own, offset, context, item.slot))
    return queries


def batch_result(slot: str | None, result: SearchResult, out: SearchOut) -> BatchResultOut:
    """One slot's answer: its hits (``out``), the notes on its filters and why it is empty."""
    empty = EmptySlotOut.model_validate(result.empty) if result.empty is not None else None
    return BatchResultOut(slot=slot, notes=result.notes, empty=empty, **out.model_dump())


@router.post("/v1/search/batch", response_model=BatchOut)
async def search_batch(
    body: BatchSearchIn, request: Request, service: ServiceDep, api: ApiDep
) -> BatchOut:
    """Many text queries at once (an assistant filling a palette), optionally all distinct."""
    queries = batch_queries(body, api)
    results = await run_in_threadpool(service.search_batch, queries, distinct=body.distinct)
    out = [
        batch_result(item.slot, r, search_out(request, r))
        for item, r in zip(body.queries, results, strict=True)
    ]
    engines = {r.engine for r in results}
    request.state.engine = engines.pop() if len(engines) == 1 else "mixed"
    return BatchOut(took_ms=round(max(r.took_ms for r in results), 3), results=out)
