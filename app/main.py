"""The FastAPI application: routes, problems, metrics, the page, /mcp and the lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import Route

from app import problems
from app.jobs import IngestJobs, IngestRunner
from app.mcp.lazy import PATH as MCP_PATH
from app.mcp.lazy import LazyMcp
from app.metrics import Metrics, MetricsMiddleware
from app.middleware import BodyCap, HostGuard, Reroute
from app.openapi import build_openapi
from app.routes import ROUTERS
from timbre import __version__
from timbre.collections_db import Collections
from timbre.search import SearchService
from timbre.settings import ApiSettings

if TYPE_CHECKING:
    from app.mcp.http import McpEndpoint

STATIC = Path(__file__).resolve().parent / "static"


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
    """Build the app around a ready-made service. ``ingest_runner`` runs ``POST /v1/ingest``
    (None: refused); ``collections`` given, the MCP server is mounted at ``/mcp``;
    ``watch_state`` gives ``/v1/stats`` the watched folders."""
    metrics = metrics or Metrics()
    service.on_embed = lambda kind, seconds: metrics.embeds.labels(kind).observe(seconds)
    mcp = None
    if collections is not None:
        mcp_collections = collections

        def build_mcp() -> McpEndpoint:
            from app.mcp.http import McpEndpoint  # the SDK: imported on first use

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
        dependencies=[Depends(problems.body_media)],
    )
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
    problems.install(app, lambda code: metrics.errors.labels(code).inc())
    # Innermost of the middlewares, so that metrics and CORS see its refusals too.
    app.add_middleware(BodyCap, api=api)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    if api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=api.cors_origins,
            allow_methods=["GET", "HEAD", "POST"],
            allow_headers=["Content-Type", "X-API-Key", "Authorization", "Range"],
        )
    app.add_middleware(Reroute, router=app.router)
    # Outermost: no route, page or mount answers a host it does not know (app.middleware).
    app.add_middleware(
        HostGuard, api=api, on_problem=lambda code: metrics.errors.labels(code).inc()
    )
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if mcp is not None:
        app.router.routes.append(Route(MCP_PATH, endpoint=mcp, include_in_schema=False))

    for path, file, media in (
        ("/", "index.html", "text/html"),
        ("/docs", "docs.html", "text/html"),
        ("/favicon.ico", "favicon.svg", "image/svg+xml"),  # asked whatever the page says
    ):
        app.add_api_route(path, _static(STATIC / file, media), include_in_schema=False)
    return app


def _static(path: Path, media: str) -> Callable[[], Any]:
    async def page() -> FileResponse:
        return FileResponse(path, media_type=media)

    return page
