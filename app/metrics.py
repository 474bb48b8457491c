"""Prometheus metrics: request latency per route and engine, embed time, queue depth, errors."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# fmt: off
_LATENCY_BUCKETS_S = (
    0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0
)
# fmt: on


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
        self.watch_events = Counter(
            "timbre_watch_events_total",
            "File events seen under the watched roots, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.watch_batches = Counter(
            "timbre_watch_batches_total",
            "Ingest jobs the watcher started (batches and reconciliations).",
            registry=self.registry,
        )
        self.watch_lag = Histogram(
            "timbre_watch_lag_seconds",
            "From the oldest unhandled file event to the start of the job that handles it.",
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 300, 1800),
            registry=self.registry,
        )


class MetricsMiddleware:
    """Times each request into ``metrics.requests`` (a plain ASGI middleware: Starlette's
    BaseHTTPMiddleware costs about a millisecond per request, this microseconds)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            engine = scope.get("state", {}).get("engine", "none")
            self.metrics.requests.labels(route, scope["method"], str(status), engine).observe(
                time.perf_counter() - started
            )
