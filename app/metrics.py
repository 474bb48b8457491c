"""Prometheus metrics: request latency per route and engine, embed time, queue depth, errors."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS_S = (
    0.002,
    0.005,
    0.01,
    0.02,
    0.035,
    0.05,
    0.075,
    0.1,
    0.2,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class Metrics:
    """One registry per app, so tests can build several apps in one process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Histogram(
            "timbre_request_seconds",
            "HTTP request latency by route, status and the engine that answered.",
            ["route", "method", "status", "engine"],
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.embeds = Histogram(
            "timbre_embed_seconds",
            "Time spent in the models per query vector, by kind (text, audio).",
            ["kind"],
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.errors = Counter(
            "timbre_errors_total",
            "Problems returned, by stable code.",
            ["code"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "timbre_model_queue_depth", "Requests waiting for the models.", registry=self.registry
        )
        self.ingest_running = Gauge(
            "timbre_ingest_jobs_running",
            "Ingest jobs running in the service.",
            registry=self.registry,
        )

    def middleware(
        self,
    ) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
        async def measure(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            started = time.perf_counter()
            status = 500
            try:
                response = await call_next(request)
                status = response.status_code
                return response
            finally:
                route = request.scope.get("route")
                path = getattr(route, "path", "unmatched")
                engine = getattr(request.state, "engine", "none")
                self.requests.labels(path, request.method, str(status), engine).observe(
                    time.perf_counter() - started
                )

        return measure
