"""Builds the objects of a process once, from settings: the composition root's workshop.

This is the one module (with the commands beside it) allowed to import ``timbre``, ``ingest``
and ``app`` together.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from app.jobs import IngestRunner
from app.schemas import IngestIn
from timbre.embedding.embedder import describe_models, load_audio_embedder, load_text_embedder
from timbre.embedding.files import resolve_model_files
from timbre.search import Lazy, SearchService, ServiceLimits, SnapshotHolder, StoreHandle
from timbre.search.duplicates import DuplicateRules
from timbre.settings import Settings
from timbre.store import open_store, snapshots_dir

log = logging.getLogger("timbre")

SERVICE_FILE = "service.json"
"""Written in the data dir by a running service: how other commands reach it."""


def build_service(
    settings: Settings, *, store_opener: Callable[[], Any] | None = None
) -> SearchService:
    """The search service with lazily loaded models, the store and the snapshot holder.

    Nothing heavy happens here: models load in the background (text) or on first need
    (audio), so ``/healthz`` answers at once and ``/readyz`` tells when all is ready.
    """
    files = resolve_model_files(settings.models)
    info = describe_models(settings.models, files)
    text = Lazy("text model", lambda: load_text_embedder(settings.models, files))
    audio = Lazy("audio model", lambda: load_audio_embedder(settings.models, files))
    store = StoreHandle(
        store_opener or (lambda: open_store(settings, info)), retry_s=settings.api.store_retry_s
    )
    snapshots = SnapshotHolder(
        snapshots_dir(settings.data_dir),
        info,
        mmap_min_bytes=settings.snapshot.mmap_min_bytes,
        verify_checksums=settings.snapshot.verify_checksums,
    )
    limits = ServiceLimits(
        library_roots=tuple(settings.api.library_roots),
        max_upload_bytes=settings.api.max_upload_bytes,
        max_upload_duration_s=settings.api.max_upload_duration_s,
        max_duration_s=settings.audio.max_duration_s,
        max_file_bytes=settings.audio.max_file_bytes,
        text_cache_size=settings.api.text_cache_size,
        snapshot_keep=settings.snapshot.keep,
        facet_default_limit=settings.facets.default_limit,
        facet_max_limit=settings.facets.max_limit,
        duplicate_rules=duplicate_rules(settings),
    )
    return SearchService(
        info=info, text=text, audio=audio, store=store, snapshots=snapshots, limits=limits
    )


def duplicate_rules(settings: Settings, min_cosine: float | None = None) -> DuplicateRules:
    """The ``duplicates`` settings as rules (``min_cosine`` overrides the configured one)."""
    d = settings.duplicates
    return DuplicateRules(
        min_cosine=d.min_cosine if min_cosine is None else min_cosine,
        duration_tolerance_s=d.duration_tolerance_s,
        duration_tolerance_ratio=d.duration_tolerance_ratio,
        neighbours=d.neighbours,
        batch=d.batch,
    )


def ingest_runner(settings: Settings, service: SearchService) -> IngestRunner:
    """Runs ingest jobs inside the service, with its loaded audio model and its store."""
    from ingest.job import options_from_settings, run_ingest

    def run(
        request: IngestIn, on_progress: Callable[[dict[str, Any]], None]
    ) -> tuple[dict[str, Any], int]:
        from dataclasses import asdict

        from timbre.labels import build_labeller

        options = options_from_settings(
            settings,
            tuple(Path(p) for p in request.paths),
            prune=request.prune,
            dry_run=request.dry_run,
            profile=request.profile,
            interactive=False,
        )
        # The service's own text tower embeds the label vocabulary on a cache miss (kept loaded).
        labeller = (
            None
            if request.dry_run
            else build_labeller(settings, service.info, service.text.get, free_text=False)
        )
        result = run_ingest(
            settings,
            options,
            embedder=service.audio.get(),
            model=service.info,
            store=service.store.get(),
            snapshot=request.snapshot,
            listener=lambda counts: on_progress(asdict(counts)),
            labeller=labeller,
        )
        service.snapshots.refresh()
        return result.summary, result.exit_code

    return run


def build_app(settings: Settings, service: SearchService | None = None) -> FastAPI:
    """The FastAPI app of ``timbre serve``, with its startup and shutdown wired."""
    from app.main import create_app

    service = service or build_service(settings)
    stop: list[Callable[[], None]] = []

    def startup() -> None:
        service.text.start()
        try:
            service.store.get()
        except Exception as exc:  # keep serving unfiltered queries from the snapshot
            log.error("vector store not available at start: %s", exc)
        service.snapshots.refresh()
        service.snapshots.watch(settings.api.snapshot_poll_s)
        stop.append(service.snapshots.stop)

    def shutdown() -> None:
        for fn in stop:
            fn()
        service.store.close()

    return create_app(
        service,
        settings.api,
        ingest_runner=ingest_runner(settings, service),
        on_startup=startup,
        on_shutdown=shutdown,
    )


def write_service_file(settings: Settings, url: str) -> Path:
    path = settings.data_dir / SERVICE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"url": url, "pid": os.getpid()}) + "\n")
    return path


def read_service_file(settings: Settings) -> dict[str, Any] | None:
    """The running service's address, if one has announced itself and is still alive."""
    path = settings.data_dir / SERVICE_FILE
    try:
        data = json.loads(path.read_text())
        os.kill(int(data["pid"]), 0)
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
