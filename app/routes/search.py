"""Search routes: text, audio (id, path or upload), hybrid and batch."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from app.deps import ApiDep, ServiceDep, paging, require_read
from app.problems import PayloadTooLargeError
from app.routes.common import as_request_error, filter_of, search_out
from app.schemas import (
    AudioSearchIn,
    BatchOut,
    BatchResultOut,
    BatchSearchIn,
    HybridSearchIn,
    SearchOut,
    TextSearchIn,
)
from timbre.errors import InvalidRequestError
from timbre.search import AudioRef, BatchQuery
from timbre.settings import ApiSettings
from timbre.store.filters import conjoin

router = APIRouter(dependencies=[Depends(require_read)])


MULTIPART_DOC = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "query": {"type": "string", "description": "hybrid only"},
                        "alpha": {"type": "number", "description": "hybrid only"},
                        "top_k": {"type": "integer"},
                        "offset": {"type": "integer"},
                        "filter": {"type": "string", "description": "the filter object as JSON"},
                    },
                    "required": ["file"],
                }
            }
        }
    }
}


async def _audio_body(
    request: Request, api: Any, model: type[AudioSearchIn]
) -> tuple[AudioSearchIn, AudioRef]:
    """Parse a JSON body (id or path) or a multipart upload into the model and a reference."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        limit = api.max_upload_bytes
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit + 1_000_000:
            raise PayloadTooLargeError(f"uploads are limited to {limit} bytes")
        form = await request.form(max_part_size=limit + 1)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidRequestError("file: a multipart upload needs a 'file' part")
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise PayloadTooLargeError(f"uploads are limited to {limit} bytes")
        fields: dict[str, Any] = {
            k: v for k, v in form.items() if k != "file" and isinstance(v, str)
        }
        if "filter" in fields:
            try:
                fields["filter"] = json.loads(fields["filter"])
            except json.JSONDecodeError as exc:
                raise InvalidRequestError(f"filter: not valid JSON ({exc.msg})") from exc
        try:
            body = model.model_validate({**fields, "id": "upload"})
        except ValidationError as exc:
            raise as_request_error(exc) from exc
        return body, AudioRef(upload=data, upload_name=upload.filename or "upload")
    try:
        body = model.model_validate(await request.json())
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(f"body: not valid JSON ({exc.msg})") from exc
    except ValidationError as exc:
        raise as_request_error(exc) from exc
    return body, AudioRef(id=body.id, path=body.path)


def batch_queries(body: BatchSearchIn, api: ApiSettings) -> list[BatchQuery]:
    """The service's queries of a batch: limits applied, the shared context ANDed into each."""
    if len(body.queries) > api.max_batch:
        raise InvalidRequestError(f"queries: at most {api.max_batch} per batch")
    context = filter_of(body.context)
    queries = []
    for item in body.queries:
        top_k, offset = paging(api, item.top_k, item.offset)
        both = conjoin(context, filter_of(item.filter))
        queries.append(BatchQuery(item.query, top_k, both, offset))
    return queries


@router.post("/v1/search/text", response_model=SearchOut, tags=["search"])
async def search_text(
    body: TextSearchIn, request: Request, service: ServiceDep, api: ApiDep
) -> SearchOut:
    """Find samples that sound like a description."""
    top_k, offset = paging(api, body.top_k, body.offset)
    result = await run_in_threadpool(
        service.search_text, body.query, top_k=top_k, offset=offset, filter=filter_of(body.filter)
    )
    return search_out(request, result)


@router.post(
    "/v1/search/audio", response_model=SearchOut, tags=["search"], openapi_extra=MULTIPART_DOC
)
async def search_audio(request: Request, service: ServiceDep, api: ApiDep) -> SearchOut:
    """Find samples that sound like a reference: an indexed id, a server path, or an upload."""
    body, ref = await _audio_body(request, api, AudioSearchIn)
    top_k, offset = paging(api, body.top_k, body.offset)
    result = await run_in_threadpool(
        service.search_audio, ref, top_k=top_k, offset=offset, filter=filter_of(body.filter)
    )
    return search_out(request, result)


@router.post(
    "/v1/search/hybrid", response_model=SearchOut, tags=["search"], openapi_extra=MULTIPART_DOC
)
async def search_hybrid(request: Request, service: ServiceDep, api: ApiDep) -> SearchOut:
    """Mix a description and a reference sound: alpha = weight of the text."""
    body, ref = await _audio_body(request, api, HybridSearchIn)
    assert isinstance(body, HybridSearchIn)
    top_k, offset = paging(api, body.top_k, body.offset)
    result = await run_in_threadpool(
        service.search_hybrid,
        body.query,
        ref,
        alpha=body.alpha,
        top_k=top_k,
        offset=offset,
        filter=filter_of(body.filter),
    )
    return search_out(request, result)


@router.post("/v1/search/batch", response_model=BatchOut, tags=["search"])
async def search_batch(
    body: BatchSearchIn, request: Request, service: ServiceDep, api: ApiDep
) -> BatchOut:
    """Many text queries at once (an assistant filling a palette), optionally all distinct."""
    queries = batch_queries(body, api)
    results = await run_in_threadpool(service.search_batch, queries, distinct=body.distinct)
    out = [
        BatchResultOut(slot=item.slot, **search_out(request, r).model_dump())
        for item, r in zip(body.queries, results, strict=True)
    ]
    engines = {r.engine for r in results}
    request.state.engine = engines.pop() if len(engines) == 1 else "mixed"
    return BatchOut(took_ms=round(max(r.took_ms for r in results), 3), results=out)
