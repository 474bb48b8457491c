"""The FastAPI application: routes, problems, metrics, the page, and the service's lifecycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app import problems
from app.bodies import BodyGuard
from app.head import HeadAsGet
from app.hosts import HostGuard
from app.jobs import IngestJobs, IngestRunner
from app.mcp.lazy import PATH as MCP_PATH
from app.mcp.lazy import LazyMcp
from app.metrics import Metrics
from app.openapi import build_openapi
from app.routes import ROUTERS
from timbre import __version__
from timbre.collections_db import Collections
from timbre.search import SearchService
from timbre.settings import ApiSettings

if TYPE_CHECKING:
    from app.mcp.http import McpEndpoint

log = logging.getLogger("timbre.api")

STATIC = Path(__file__).resolve().parent / "static"


class _MetricsMiddleware:
    """Adapter so Starlette can build the metrics middleware into its stack."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self._call = metrics.middleware(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._call(scope, receive, send)


def create_app(
    service: SearchService,
    api: ApiSettings,
    *,
    ingest_runner: IngestRunner | None = None,
    on_startup: Callable[[], None] | None = None,
    on_shutdown: Callable[[], None] | None = None,
    metrics: Metrics | None = None,
    collections: Collections | None = None,
    watch_state: Callable[[], dict[str, Any] | None] | None = None,
) -> FastAPI:
    """Build the app around a ready-made service (the composition root builds the service).

    Args:
        service: answers every query.
        api: the ``api`` settings (keys, limits, CORS).
        ingest_runner: runs an ingest job with the service's models and store; None disables
            ``POST /v1/ingest``.
        on_startup: called once the app starts (e.g. start loading models, watching snapshots).
        on_shutdown: called when it stops (stop watching, close the store).
        metrics: a Metrics registry (a fresh one if omitted).
        collections: the data dir's collections; given, the MCP server is mounted at ``/mcp``.
        watch_state: the watched folders' status for ``/v1/stats`` (None: not watching).
    """
    metrics = metrics or Metrics()
    service.on_embed = lambda kind, seconds: metrics.embeds.labels(kind).observe(seconds)
    mcp = None
    if collections is not None:
        mcp_collections = collections

        def build_mcp() -> McpEndpoint:
            from app.mcp.http import McpEndpoint  # the SDK: built on first use (app.mcp.lazy)

            return McpEndpoint(service, api, mcp_collections)

        mcp = LazyMcp(build_mcp)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if on_startup is not None:
            on_startup()
        try:
            async with mcp.running() if mcp is not None else nullcontext():
                yield
        finally:
            if on_shutdown is not None:
                on_shutdown()

    app = FastAPI(
        title="Timbre",
        version=__version__,
        summary="Semantic search for audio sample libraries: text, audio and hybrid queries.",
        lifespan=lifespan,
        # FastAPI's own /docs and /redoc load their scripts from a public CDN: a blank page
        # offline, and requests leaving a loopback-only tool. /docs below is self-contained.
        docs_url=None,
        redoc_url=None,
    )
    # Built on first use, once every route is in: the schema of this configuration.
    maxima = {("/v1/facets", "limit"): service.library.limits.facet_max_limit}
    app.openapi = lambda: build_openapi(app, api, ROUTERS, maxima)  # type: ignore[method-assign]
    app.state.service = service
    app.state.api = api
    app.state.metrics = metrics
    app.state.watch_state = watch_state or (lambda: None)
    disk = service.library.disk
    app.state.jobs = IngestJobs(
        ingest_runner,
        on_change=metrics.ingest_running.set,
        precheck=None if disk is None else lambda: disk.check(0, "an ingest job"),
    )

    def count_problem(code: str) -> None:
        metrics.errors.labels(code).inc()

    problems.install(app, on_error=count_problem)
    # Innermost of the middlewares, so that metrics and CORS see its refusals too.
    app.add_middleware(
        BodyGuard,
        openapi=app.openapi,
        json_limit_bytes=api.max_body_bytes,
        upload_limit_bytes=api.max_upload_bytes,
        on_problem=count_problem,
    )
    app.add_middleware(_MetricsMiddleware, metrics=metrics)
    if api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=api.cors_origins,
            allow_methods=["GET", "HEAD", "POST"],
            allow_headers=["Content-Type", "X-API-Key", "Authorization", "Range"],
        )
    app.add_middleware(HeadAsGet, router=app.router)
    # Outermost: no route, page or mount answers a host it does not know (app.hosts).
    app.add_middleware(HostGuard, api=api, on_problem=count_problem)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if mcp is not None:
        app.router.routes.append(Route(MCP_PATH, endpoint=mcp, include_in_schema=False))

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/docs", include_in_schema=False)
    async def api_reference() -> FileResponse:
        return FileResponse(STATIC / "docs.html", media_type="text/html")

    return app
