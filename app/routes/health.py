"""Probes and metrics (never behind a key)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.deps import ServiceDep
from app.openapi import problems
from app.schemas import HealthOut, ReadyOut
from timbre.errors import UnavailableError

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut)
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", response_model=ReadyOut, responses=problems(503))
async def readyz(service: ServiceDep) -> Any:
    """503 until the models, the store and a snapshot are ready."""
    state = service.library.readiness()
    if not state["ready"]:
        raise UnavailableError("not ready: " + "; ".join(state["reasons"]))
    return state


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> PlainTextResponse:
    """Prometheus metrics."""
    registry = request.app.state.metrics
    registry.queue_depth.set(request.app.state.service.waiting)
    return PlainTextResponse(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
