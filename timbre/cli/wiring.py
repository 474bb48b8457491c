"""The composition root: builds a process's objects once, from settings.

The one module (with the commands beside it) allowed to import ``timbre``, ``ingest`` and
``app`` together. One :class:`~timbre.search.Library` is built per process and handed to
search and every service beside it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from timbre.collections_db import Collections
from timbre.diskspace import DiskReserve
from timbre.embedding.embedder import describe_models, load_audio_embedder, load_text_embedder
from timbre.embedding.files import resolve_model_files
from timbre.errors import StoreDamagedError, UnavailableError
from timbre.kits_db import Kits
from timbre.library_roots import LibraryRoots, read_recorded_roots
from timbre.search import Lazy, Library, SearchService, ServiceLimits, SnapshotHolder, StoreHandle
from timbre.search.browse import BrowseService
from timbre.search.collections import CollectionsService, MatchedSource
from timbre.search.duplicates import DuplicateRules
from timbre.search.kit_export import KitExporter
from timbre.search.kits import KitsService
from timbre.search.media import MediaService
from timbre.search.routing import RoutingPolicy
from timbre.settings import Settings
from timbre.store import open_store, snapshots_dir
from timbre.store.snapshot import ScanOptions
from timbre.store.snapshot.export import remove_stale_partials

if TYPE_CHECKING:  # the web stack imports in ~1.5 s: `timbre serve` loads the text model meanwhile
    from fastapi import FastAPI

    from app.jobs import IngestRunner
    from app.schemas import IngestIn

log = logging.getLogger("timbre")


def service_roots(settings: Settings) -> tuple[tuple[Path, ...], str | None]:
    """The roots the service accepts (``api.library_roots``, those this data dir indexes, the
    watched ones) and what is wrong with the data dir's roots file (None: nothing)."""
    recorded = read_recorded_roots(settings.data_dir)
    roots = [*settings.api.library_roots, *recorded.roots]
    if settings.watch.enabled and settings.watch.roots:
        roots.extend(settings.watch.roots)  # a watched folder is a library root
    return tuple(dict.fromkeys(roots)), recorded.problem


def build_library(settings: Settings, *, store_opener: Callable[[], Any] | None = None) -> Library:
    """The process's one :class:`Library`. Nothing heavy happens here: the models load later,
    so ``/healthz`` answers at once and ``/readyz`` tells when all is ready."""
    files = resolve_model_files(settings.models)
    info = describe_models(settings.models, files)
    snap = settings.snapshot
    roots, roots_problem = service_roots(settings)
    if roots_problem is not None:
        log.error("library roots: %s; files are served from api.library_roots only", roots_problem)
    if not roots:
        log.warning("%s: no file is served from disk", LibraryRoots([], roots_problem).why_none())
    return Library(
        info=info,
        text=Lazy("text model", lambda: load_text_embedder(settings.models, files)),
        audio=Lazy(
            "audio model", lambda: load_audio_embedder(settings.models, files, batches=False)
        ),
        store=StoreHandle(
            store_opener or (lambda: open_store(settings, info)), retry_s=settings.api.store_retry_s
        ),
        snapshots=SnapshotHolder(
            snapshots_dir(settings.data_dir),
            info,
            mmap_min_bytes=snap.mmap_min_bytes,
            verify_checksums=snap.verify_checksums,
            reverify_unchanged=snap.reverify_unchanged,
            scan=ScanOptions(
                quantised_min_vectors=snap.quantised_min_vectors, threads=snap.scan_threads
            ),
        ),
        limits=ServiceLimits(
            library_roots=roots,
            roots_problem=roots_problem,
            max_upload_bytes=settings.api.max_upload_bytes,
            max_upload_duration_s=settings.api.max_upload_duration_s,
            max_duration_s=settings.audio.max_duration_s,
            max_file_bytes=settings.audio.max_file_bytes,
            text_cache_size=settings.api.text_cache_size,
            snapshot_keep=snap.keep,
            facet_default_limit=settings.facets.default_limit,
            facet_max_limit=settings.facets.max_limit,
            duplicate_rules=duplicate_rules(settings),
            text_batch_max=settings.api.text_batch_max,
            tempo_tolerance_pct=settings.fit.tempo_tolerance_pct,
        ),
        disk=DiskReserve(settings.data_dir, settings.disk.min_free_bytes),
    )


def build_service(
    settings: Settings, *, store_opener: Callable[[], Any] | None = None
) -> SearchService:
    """The search service over a new :func:`build_library`."""
    return SearchService(
        build_library(settings, store_opener=store_opener),
        routing=RoutingPolicy(filtered_min_points=settings.snapshot.filtered_min_points),
    )


def duplicate_rules(settings: Settings, min_cosine: float | None = None) -> DuplicateRules:
    """The ``duplicates`` settings as rules (``min_cosine`` overrides the configured one)."""
    d = settings.duplicates
    return DuplicateRules(
        min_cosine=d.min_cosine_of(settings.models.family) if min_cosine is None else min_cosine,
        duration_tolerance_s=d.duration_tolerance_s,
        duration_tolerance_ratio=d.duration_tolerance_ratio,
        neighbours=d.neighbours,
        batch=d.batch,
    )


def ingest_runner(settings: Settings, library: Library) -> IngestRunner:
    """Runs ingest jobs inside the service, with its loaded audio model and its store."""

    def run(
        request: IngestIn, on_progress: Callable[[dict[str, Any]], None]
    ) -> tuple[dict[str, Any], int]:
        from dataclasses import asdict

        from ingest.job import run_ingest  # on first job, not at start
        from timbre.cli.ingest import job_options
        from timbre.labels import build_labeller

        options = job_options(settings, request, interactive=False)
        # The service's own text tower embeds the label vocabulary on a cache miss (kept loaded).
        labeller = (
            None
            if request.dry_run
            else build_labeller(settings, library.info, library.text.get, free_text=False)
        )
        if library.store.damage is not None:
            raise StoreDamagedError(library.store.damage)
        result = run_ingest(
            settings,
            options,
            verify=False,  # read back once at start (readiness shows it), not per job
            embedder=None if request.dry_run else library.audio.get(),
            model=library.info,
            store=library.store.get(),
            # A service's jobs publish a snapshot unless asked not to: it serves from it.
            snapshot=True if request.snapshot is None else request.snapshot,
            listener=lambda counts: on_progress(asdict(counts)),
            labeller=labeller,
            optimize=False,  # the next command-line job compacts: this one must not stall searches
        )
        library.snapshots.refresh()
        return result.summary, result.exit_code

    return run


def _verify_store(library: Library) -> None:
    try:
        library.store.verify()
    except Exception:  # the store closed meanwhile (shutdown): nothing to report
        log.debug("store verification did not finish", exc_info=True)


def relabel_runner(settings: Settings, library: Library) -> Callable[[bool, bool], dict[str, Any]]:
    """Relabels the library inside the service, with its text tower and its store."""

    def run(dry_run: bool, snapshot: bool) -> dict[str, Any]:
        from timbre.labels import load_vocabulary, make_labeller, relabel

        labeller = make_labeller(
            settings,
            library.info,
            library.text.get,
            free_text=True,
            vocabulary=load_vocabulary(settings.labels.vocabulary),
        )
        report = relabel(
            library.store.get(),
            labeller,
            batch_size=settings.labels.relabel_batch,
            dry_run=dry_run,
        )
        out = report.as_dict()
        if not dry_run and snapshot and report.changed:
            out["snapshot"] = library.export_snapshot()
        return out

    return run


def preload_audio(library: Library) -> threading.Thread:
    """Load the audio side in the background once the text side is loaded: text queries are
    what readiness promises, so the two loads do not share the cores."""

    def run() -> None:
        with contextlib.suppress(UnavailableError):  # the text side reports its own failure
            library.text.get()
        library.audio.start()

    thread = threading.Thread(target=run, name="preload-audio", daemon=True)
    thread.start()
    return thread


def matched_source(media: MediaService) -> MatchedSource:
    """The matched renditions kit and collection exports take: the media service's."""
    return lambda item_id, bpm, semitones: media.matched_rendition(
        item_id, bpm=bpm, semitones=semitones
    )


def build_app(settings: Settings, service: SearchService | None = None) -> FastAPI:
    """The FastAPI app of ``timbre serve``, with its startup and shutdown wired."""
    from app.main import create_app

    service = service or build_service(settings)
    library = service.library
    stop: list[Callable[[], None]] = []
    watching: list[Any] = []  # the watcher, once started

    def startup() -> None:
        # An export killed mid-way (kill -9, power cut) left its folder; no export runs yet.
        remove_stale_partials(snapshots_dir(settings.data_dir))
        library.text.start()
        try:
            library.store.get()
        except Exception as exc:  # keep serving unfiltered queries from the snapshot
            log.error("vector store not available at start: %s", exc)
        else:
            # Read back whole once, beside the model load: a truncated file shows only when
            # read, and readiness must say so before queries find out.
            threading.Thread(target=_verify_store, args=(library,), daemon=True).start()
        library.snapshots.refresh()
        if settings.api.preload_audio:
            preload_audio(library)
        library.snapshots.watch(settings.api.snapshot_poll_s)
        stop.append(library.snapshots.stop)
        if settings.watch.enabled:
            from timbre.cli.watching import service_watcher

            # Refused (said once) when the live collection is another family's.
            watcher = service_watcher(settings, library, app.state.jobs, app.state.metrics)
            watcher.start()
            watching.append(watcher)
            stop.insert(0, watcher.stop)  # first: no job starts while the rest stops

    def shutdown() -> None:
        for fn in stop:
            fn()
        library.store.close()

    collections = Collections.in_data_dir(settings.data_dir)
    stop.append(collections.close)
    kits = Kits.in_data_dir(settings.data_dir)
    stop.append(kits.close)
    app = create_app(
        service,
        settings.api,
        ingest_runner=ingest_runner(settings, library),
        on_startup=startup,
        on_shutdown=shutdown,
        collections=collections,
        watch_state=lambda: watching[0].state() if watching else None,
    )
    # The page's services beside search; routes read them from app.state.
    media = MediaService(
        library,
        settings.data_dir / "cache",
        max_file_bytes=settings.audio.max_file_bytes,
        max_duration_s=settings.audio.max_duration_s,
        rendition_cache_bytes=settings.media.rendition_cache_bytes,
    )
    app.state.media = media
    matched = matched_source(media)
    app.state.collections = CollectionsService(collections, library, matched)
    app.state.kits = KitsService(kits, service)
    app.state.kit_export = KitExporter(app.state.kits, matched=matched)
    app.state.relabel = relabel_runner(settings, library)
    app.state.browse = BrowseService(library)
    return app
