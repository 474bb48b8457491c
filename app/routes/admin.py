"""Admin routes: ingest jobs, snapshot export, stats; probes and metrics (never behind a key)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from app.deps import JobsDep, ServiceDep, require_read, require_write
from app.openapi import BODY_PROBLEMS, problems
from app.schemas import HealthOut, IngestIn, IngestJobOut, ReadyOut, StatsOut
from app.schemas.admin import RelabelIn, outside_paths
from timbre.errors import ConflictError, ForbiddenPathError, InvalidRequestError, UnavailableError

read = APIRouter(dependencies=[Depends(require_read)], tags=["admin"], responses=problems(401))
write = APIRouter(dependencies=[Depends(require_write)], tags=["admin"], responses=problems(401))
probes = APIRouter(tags=["health"])


@write.post(
    "/v1/ingest",
    response_model=IngestJobOut,
    status_code=202,
    responses={**BODY_PROBLEMS, **problems(403, 409, 507)},
)
async def start_ingest(body: IngestIn, service: ServiceDep, jobs: JobsDep) -> IngestJobOut:
    """Start an ingest job inside the service (it reuses the loaded models)."""
    for path in body.paths:
        await run_in_threadpool(service.library.allowed_folder, path)
    for path in [*(body.changed or []), *body.gone]:
        if "\x00" in path:
            raise InvalidRequestError(f"path {path!r} contains a NUL byte")
        if (why := outside_paths(path, body.paths)) is not None:
            raise ForbiddenPathError(why)
    job = jobs.start(body)
    return IngestJobOut(**asdict(job))


@read.get("/v1/ingest/{job_id}", response_model=IngestJobOut, responses=problems(404))
async def ingest_status(job_id: str, jobs: JobsDep) -> IngestJobOut:
    """Progress, failures and summary of an ingest job."""
    return IngestJobOut(**asdict(jobs.get(job_id)))


@write.post("/v1/snapshot", responses=problems(409, 503))
async def snapshot(service: ServiceDep) -> dict[str, Any]:
    """Export a FAISS snapshot of the live collection now, and serve it."""
    return await run_in_threadpool(service.library.export_snapshot)


@write.post("/v1/relabel", responses={**BODY_PROBLEMS, **problems(409, 503)})
async def relabel(body: RelabelIn, request: Request, jobs: JobsDep) -> dict[str, Any]:
    """Label every sample anew from its stored vector with the service's vocabulary (what
    `timbre relabel` runs here while the service owns the store); returns its report."""
    runner = getattr(request.app.state, "relabel", None)
    if runner is None:
        raise ConflictError("this service was started without relabelling support")
    if jobs.running:
        raise ConflictError("an ingest job is running; relabel once it has finished")
    result: dict[str, Any] = await run_in_threadpool(runner, body.dry_run, body.snapshot)
    return result


@read.get("/v1/stats", response_model=StatsOut)
async def stats(service: ServiceDep, request: Request) -> dict[str, Any]:
    """Counts, snapshot age and lag, models, pipeline version and watched folders."""
    out = await run_in_threadpool(service.stats)
    out["watch"] = request.app.state.watch_state()
    return out


@probes.get("/healthz", response_model=HealthOut)
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@probes.get("/readyz", response_model=ReadyOut, responses=problems(503))
async def readyz(service: ServiceDep) -> Any:
    """503 until the models, the store and a snapshot are ready."""
    state = service.library.readiness()
    if not state["ready"]:
        raise UnavailableError("not ready: " + "; ".join(state["reasons"]))
    return state


@probes.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> PlainTextResponse:
    """Prometheus metrics."""
    registry = request.app.state.metrics
    registry.queue_depth.set(request.app.state.service.waiting)
    return PlainTextResponse(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
