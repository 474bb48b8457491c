"""Search routes: text, audio (an id or a path; an upload at ``.../upload``), hybrid, batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from starlette.concurrency import run_in_threadpool

from app.deps import ApiDep, ServiceDep, paging, require_read
from app.openapi import BODY_PROBLEMS, problems
from app.problems import MULTIPART
from app.routes.common import filter_of, fit_of, search_out
from app.schemas import (
    AudioSearchIn,
    AudioUploadIn,
    BatchOut,
    BatchResultOut,
    BatchSearchIn,
    EmptySlotOut,
    HybridSearchIn,
    HybridUploadIn,
    SearchOut,
    TextSearchIn,
)
from timbre.errors import InvalidRequestError
from timbre.search import AudioRef, BatchQuery, SearchResult, SearchService
from timbre.settings import ApiSettings

_ROUTES = {
    "dependencies": [Depends(require_read)],
    "tags": ["search"],
    "responses": {**BODY_PROBLEMS, **problems(401, 503)},
}
router = APIRouter(**_ROUTES)  # type: ignore[arg-type]
uploads = APIRouter(**_ROUTES)  # type: ignore[arg-type]
"""The upload routes, at paths ending in ``/upload`` (app.middleware.BodyCap's upload limit)."""

UPLOAD_DOC = {  # the parts' media types, so that clients send an audio file and a JSON filter
    "requestBody": {
        "content": {
            MULTIPART: {
                "encoding": {
                    "file": {"contentType": "audio/*"},
                    "filter": {"contentType": "application/json"},
                    "context": {"contentType": "application/json"},
                }
            }
        }
    }
}


def run_text(service: SearchService, api: ApiSettings, body: TextSearchIn) -> SearchResult:
    """The search a text request asks for, within the configured limits (also the MCP's)."""
    top_k, offset = paging(api, body.top_k, body.offset)
    search_filter = filter_of(api, body.filter)
    fit = fit_of(service, body.context)
    return service.search_text(
        body.query,
        top_k=top_k,
        offset=offset,
        filter=search_filter,
        avoid=body.avoid or (),
        fit=fit,
    )


def run_audio(
    service: SearchService, api: ApiSettings, body: AudioSearchIn | AudioUploadIn, ref: AudioRef
) -> SearchResult:
    """An audio search, or a hybrid one when ``body`` has a query."""
    top_k, offset = paging(api, body.top_k, body.offset)
    search_filter = filter_of(api, body.filter)
    fit = fit_of(service, body.context)
    if isinstance(body, HybridSearchIn | HybridUploadIn):
        return service.search_hybrid(
            body.query,
            ref,
            alpha=body.alpha,
            top_k=top_k,
            offset=offset,
            filter=search_filter,
            avoid=getattr(body, "avoid", None) or (),
            fit=fit,
        )
    return service.search_audio(ref, top_k=top_k, offset=offset, filter=search_filter, fit=fit)


def run_batch(service: SearchService, api: ApiSettings, body: BatchSearchIn) -> list[SearchResult]:
    if len(body.queries) > api.max_batch:
        raise InvalidRequestError(f"queries: at most {api.max_batch} per batch")
    context = filter_of(api, body.context)
    project = None
    if body.context is not None:  # its single bpm and key: the project's, not a filter
        project = body.context.project(service.library.limits.tempo_tolerance_pct)
    queries = []
    for item in body.queries:
        top_k, offset = paging(api, item.top_k, item.offset)
        own = filter_of(api, item.filter)
        avoid = tuple(item.avoid or ())
        queries.append(BatchQuery(item.query, top_k, own, offset, context, item.slot, avoid))
    return service.search_batch(queries, distinct=body.distinct, fit=project)


def batch_out(
    body: BatchSearchIn, results: list[SearchResult], out: Callable[[SearchResult], SearchOut]
) -> BatchOut:
    """Each slot's hits (``out``), the notes on its filters and why it is empty."""
    slots = []
    for item, result in zip(body.queries, results, strict=True):
        empty = EmptySlotOut.model_validate(result.empty) if result.empty is not None else None
        hits = out(result).model_dump()
        slots.append(BatchResultOut(slot=item.slot, notes=result.notes, empty=empty, **hits))
    return BatchOut(took_ms=round(max(r.took_ms for r in results), 3), results=slots)


async def _uploaded(form: AudioUploadIn) -> AudioRef:
    # Starlette's form parser spooled the file to a temporary file as the body streamed in,
    # under the upload size limit: what is read here is at most that limit.
    data = await form.file.read()
    return AudioRef(upload=data, upload_name=form.file.filename or "upload")


@router.post("/v1/search/text", response_model=SearchOut)
async def search_text(
    body: TextSearchIn, request: Request, service: ServiceDep, api: ApiDep
) -> SearchOut:
    """Find samples that sound like a description."""
    return search_out(request, await run_in_threadpool(run_text, service, api, body))


@router.post("/v1/search/audio", response_model=SearchOut, responses=problems(403, 404))
async def search_audio(
    body: AudioSearchIn, request: Request, service: ServiceDep, api: ApiDep
) -> SearchOut:
    """Find samples that sound like a reference: an indexed id or a server path."""
    ref = AudioRef(id=body.id, path=body.path)
    return search_out(request, await run_in_threadpool(run_audio, service, api, body, ref))


@uploads.post("/v1/search/audio/upload", response_model=SearchOut, openapi_extra=UPLOAD_DOC)
async def search_audio_upload(
    form: Annotated[AudioUploadIn, Form(media_type=MULTIPART)],
    request: Request,
    service: ServiceDep,
    api: ApiDep,
) -> SearchOut:
    """Find samples that sound like an uploaded file."""
    ref = await _uploaded(form)
    return search_out(request, await run_in_threadpool(run_audio, service, api, form, ref))


@router.post("/v1/search/hybrid", response_model=SearchOut, responses=problems(403, 404))
async def search_hybrid(
    body: HybridSearchIn, request: Request, service: ServiceDep, api: ApiDep
) -> SearchOut:
    """Mix a description and a reference sound (an id or a path): alpha = weight of the text."""
    ref = AudioRef(id=body.id, path=body.path)
    return search_out(request, await run_in_threadpool(run_audio, service, api, body, ref))


@uploads.post("/v1/search/hybrid/upload", response_model=SearchOut, openapi_extra=UPLOAD_DOC)
async def search_hybrid_upload(
    form: Annotated[HybridUploadIn, Form(media_type=MULTIPART)],
    request: Request,
    service: ServiceDep,
    api: ApiDep,
) -> SearchOut:
    """Mix a description and an uploaded file: alpha = weight of the text."""
    ref = await _uploaded(form)
    return search_out(request, await run_in_threadpool(run_audio, service, api, form, ref))


@router.post("/v1/search/batch", response_model=BatchOut)
async def search_batch(
    body: BatchSearchIn, request: Request, service: ServiceDep, api: ApiDep
) -> BatchOut:
    """Many text queries at once (an assistant filling a palette), optionally all distinct."""
    results = await run_in_threadpool(run_batch, service, api, body)
    engines = {r.engine for r in results}
    request.state.engine = engines.pop() if len(engines) == 1 else "mixed"
    return batch_out(body, results, lambda result: search_out(request, result))
