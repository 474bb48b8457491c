"""HTTP routes: each validates, makes one service call off the event loop, and maps the result."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from app.deps import ApiDep, JobsDep, ServiceDep, paging, require_read, require_write
from app.problems import PayloadTooLargeError
from app.schemas import (
    AudioSearchIn,
    BatchOut,
    BatchResultOut,
    BatchSearchIn,
    FilterIn,
    HitOut,
    HybridSearchIn,
    IngestIn,
    IngestJobOut,
    SearchOut,
    TextSearchIn,
)
from timbre.errors import InvalidRequestError, UnavailableError
from timbre.search import AudioRef, BatchQuery, SearchResult
from timbre.store import Hit

read = APIRouter(dependencies=[Depends(require_read)])
write = APIRouter(dependencies=[Depends(require_write)])
health = APIRouter()

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


def _audio_url(request: Request) -> str:
    """The audio URL template of this request's host: url_for is slow, so call it once."""
    return str(request.url_for("item_audio", item_id="{id}"))


def _hit(url: str, hit: Hit | None, item_id: str, payload: dict[str, Any]) -> HitOut:
    return HitOut(
        id=item_id,
        score=hit.score if hit else None,
        audio_url=url.replace("%7Bid%7D", item_id).replace("{id}", item_id),
        **payload,
    )


def _out(request: Request, result: SearchResult) -> SearchOut:
    request.state.engine = result.engine
    url = _audio_url(request)
    return SearchOut(
        engine=result.engine,  # type: ignore[arg-type]  # "faiss" or "qdrant", set by route()
        took_ms=round(result.took_ms, 3),
        query=result.query,
        hits=[_hit(url, h, h.id, h.payload) for h in result.hits],
    )


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
            raise _as_request_error(exc) from exc
        return body, AudioRef(upload=data, upload_name=upload.filename or "upload")
    try:
        body = model.model_validate(await request.json())
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(f"body: not valid JSON ({exc.msg})") from exc
    except ValidationError as exc:
        raise _as_request_error(exc) from exc
    return body, AudioRef(id=body.id, path=body.path)


def _as_request_error(exc: ValidationError) -> Exception:
    from fastapi.exceptions import RequestValidationError

    return RequestValidationError(exc.errors())


def _filter(value: FilterIn | None) -> Any:
    return value.to_filter() if value is not None else None


@read.post("/v1/search/text", response_model=SearchOut, tags=["search"])
async def search_text(
    body: TextSearchIn, request: Request, service: ServiceDep, api: ApiDep
) -> SearchOut:
    """Find samples that sound like a description."""
    top_k, offset = paging(api, body.top_k, body.offset)
    result = await run_in_threadpool(
        service.search_text, body.query, top_k=top_k, offset=offset, filter=_filter(body.filter)
    )
    return _out(request, result)


@read.post(
    "/v1/search/audio", response_model=SearchOut, tags=["search"], openapi_extra=MULTIPART_DOC
)
async def search_audio(request: Request, service: ServiceDep, api: ApiDep) -> SearchOut:
    """Find samples that sound like a reference: an indexed id, a server path, or an upload."""
    body, ref = await _audio_body(request, api, AudioSearchIn)
    top_k, offset = paging(api, body.top_k, body.offset)
    result = await run_in_threadpool(
        service.search_audio, ref, top_k=top_k, offset=offset, filter=_filter(body.filter)
    )
    return _out(request, result)


@read.post(
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
        filter=_filter(body.filter),
    )
    return _out(request, result)


@read.post("/v1/search/batch", response_model=BatchOut, tags=["search"])
async def search_batch(
    body: BatchSearchIn, request: Request, service: ServiceDep, api: ApiDep
) -> BatchOut:
    """Many text queries at once (an assistant filling a palette), optionally all distinct."""
    if len(body.queries) > api.max_batch:
        raise InvalidRequestError(f"queries: at most {api.max_batch} per batch")
    queries = []
    for item in body.queries:
        top_k, offset = paging(api, item.top_k, item.offset)
        queries.append(BatchQuery(item.query, top_k, _filter(item.filter), offset))
    results = await run_in_threadpool(service.search_batch, queries, distinct=body.distinct)
    out = [
        BatchResultOut(slot=item.slot, **_out(request, r).model_dump())
        for item, r in zip(body.queries, results, strict=True)
    ]
    engines = {r.engine for r in results}
    request.state.engine = engines.pop() if len(engines) == 1 else "mixed"
    return BatchOut(took_ms=round(max(r.took_ms for r in results), 3), results=out)


@read.get("/v1/items/{item_id}", response_model=HitOut, tags=["items"])
async def item(item_id: str, request: Request, service: ServiceDep) -> HitOut:
    """One indexed sample and its metadata."""
    payload = await run_in_threadpool(service.item, item_id)
    return _hit(_audio_url(request), None, item_id, payload)


@read.get(
    "/v1/items/{item_id}/audio", name="item_audio", tags=["items"], response_class=FileResponse
)
async def item_audio(item_id: str, service: ServiceDep) -> FileResponse:
    """The original file of an indexed sample (supports HTTP range requests for seeking)."""
    path = await run_in_threadpool(service.item_file, item_id)
    return FileResponse(path, filename=path.name, content_disposition_type="inline")


@write.post("/v1/ingest", response_model=IngestJobOut, status_code=202, tags=["admin"])
async def start_ingest(body: IngestIn, service: ServiceDep, jobs: JobsDep) -> IngestJobOut:
    """Start an ingest job inside the service (it reuses the loaded models)."""
    for path in body.paths:
        await run_in_threadpool(service.allowed_folder, path)
    job = jobs.start(body)
    return IngestJobOut(**asdict(job))


@read.get("/v1/ingest/{job_id}", response_model=IngestJobOut, tags=["admin"])
async def ingest_status(job_id: str, jobs: JobsDep) -> IngestJobOut:
    """Progress, failures and summary of an ingest job."""
    return IngestJobOut(**asdict(jobs.get(job_id)))


@write.post("/v1/snapshot", tags=["admin"])
async def snapshot(service: ServiceDep) -> dict[str, Any]:
    """Export a FAISS snapshot of the live collection now, and serve it."""
    return await run_in_threadpool(service.export_snapshot)


@read.get("/v1/stats", tags=["admin"])
async def stats(service: ServiceDep) -> dict[str, Any]:
    """Counts, snapshot age and lag, models and pipeline version."""
    return await run_in_threadpool(service.stats)


@health.get("/healthz", tags=["health"])
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@health.get("/readyz", tags=["health"])
async def readyz(service: ServiceDep) -> Any:
    """503 until the models, the store and a snapshot are ready."""
    state = service.readiness()
    if not state["ready"]:
        raise UnavailableError("not ready: " + "; ".join(state["reasons"]))
    return state


@health.get("/metrics", tags=["health"], response_class=PlainTextResponse)
async def metrics(request: Request) -> PlainTextResponse:
    """Prometheus metrics."""
    registry = request.app.state.metrics
    registry.queue_depth.set(request.app.state.service.waiting)
    return PlainTextResponse(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
