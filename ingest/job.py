"""One ingest job wired from settings, models and an open store (CLI and API alike)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ingest.cache import FeatureCache, HashCache
from ingest.metadata import MetadataRules
from ingest.options import Embedder, JobOptions, JobResult, Limits
from ingest.pipeline import IngestJob
from ingest.report import Counts, FailureLog, SkipLog
from timbre.diskspace import DiskReserve, as_disk_full
from timbre.embedding.info import ModelInfo
from timbre.embedding.runtime import device_type
from timbre.errors import DiskFullError, SnapshotError
from timbre.fsutil import now_stamp
from timbre.labels import Labeller
from timbre.library_roots import record_roots, recorded_roots
from timbre.settings import Settings
from timbre.store import Collection, Generation, VectorStore, snapshots_dir
from timbre.store.integrity import check_readable
from timbre.store.snapshot import (
    MANIFEST_FILE,
    SnapshotManifest,
    current_snapshot_name,
    export_snapshot,
    freshness,
)

log = logging.getLogger("timbre.ingest")


def options_from_settings(
    settings: Settings, roots: tuple[Path, ...], **request: Any
) -> JobOptions:
    """A job's options: the ``ingest`` settings under the request's options (None = not given)."""
    s = settings.ingest
    base = JobOptions(
        roots=roots,
        profile=s.profile,
        workers=s.workers,
        batch_files=s.batch_files.on(device_type(settings.models.device)),
        batch_audio_s=s.batch_audio_s,
        progress_interval_s=s.progress_interval_s,
    )
    return replace(base, **{k: v for k, v in request.items() if v is not None})


def run_ingest(
    settings: Settings,
    options: JobOptions,
    *,
    embedder: Embedder | None,
    model: ModelInfo,
    store: VectorStore,
    snapshot: bool | None = None,
    listener: Callable[[Counts], None] | None = None,
    labeller: Labeller | None = None,
    optimize: bool = True,
    verify: bool = True,
    rebuild: bool = False,
) -> JobResult:
    """Run one job: index the roots, publish a re-index if one was built, export a snapshot.

    Other models or schema in the live collection mean a new collection, published complete
    (sharded: by ``timbre store publish``). ``embedder`` None: a dry run. ``optimize``: False in
    the service (searches would stall). ``verify``: refuse an unreadable live collection
    (StoreDamagedError). ``rebuild``: a new collection whatever the live one holds.
    """
    data = settings.data_dir
    stamp = now_stamp()
    reports = data / "reports"
    dry = options.dry_run
    generation = _generation(store, rebuild=rebuild, verify=verify) if not dry else None
    if not dry:
        # Before minutes of embedding: each store batch checks again (timbre.diskspace).
        DiskReserve(data, settings.disk.min_free_bytes).check(0, "the ingest job")
    job = IngestJob(
        options,
        embedder=embedder,
        store=generation or store.live(),
        rules=MetadataRules.from_settings(settings.ingest),
        limits=Limits(
            # A dry run decodes nothing, so it needs no model rate (nor any model).
            embedder.sample_rate if embedder is not None else 0,
            settings.audio.max_duration_s,
            settings.audio.max_file_bytes,
            embedder.resampler if embedder is not None else "sinc",
        ),
        model=model,
        hash_cache=None
        if dry
        else HashCache(data / "cache" / "hashes.sqlite", rehash=options.rehash),
        # MERT window vectors are clamp3's alone; another family's windows are not cached.
        feature_cache=None
        if dry or model.family != "clamp3"
        else FeatureCache(data / "cache" / "mert", model.mert, model.pipeline_version),
        failures=FailureLog(None if dry else reports / f"ingest-{stamp}-failures.jsonl"),
        skipped=SkipLog(None if dry else reports / f"ingest-{stamp}-skipped.jsonl"),
        listener=listener,
        labeller=labeller,
        library_roots=recorded_roots(data),
    )
    result = _run_job(job)
    if not dry and result.summary["counts"]["discovered"]:
        record_roots(data, options.roots)  # the service accepts these roots (timbre serve)
    if optimize and not dry:
        _optimize(store, result)
    if generation is not None:
        if options.shard is None:
            generation.publish()
            result.summary["published"] = generation.name
        else:
            result.summary["published"] = None
            log.warning(
                "sharded re-index: publish %s with `timbre store publish` once every shard is done",
                generation.name,
            )
    want_snapshot = settings.ingest.snapshot if snapshot is None else snapshot
    if want_snapshot and not dry and (generation is None or options.shard is None):
        started = time.perf_counter()
        current = current_manifest(snapshots_dir(data), store.live())
        if current is not None:
            log.info("snapshot %s already holds everything: not exported again", current.name)
            result.summary["snapshot"] = {
                "name": current.name,
                "count": current.count,
                "unchanged": True,
            }
        else:
            manifest = export_snapshot(
                store.live(),
                snapshots_dir(data),
                source_mode=store.mode,
                keep=settings.snapshot.keep,
            )
            result.summary["snapshot"] = {"name": manifest.name, "count": manifest.count}
        result.summary["stage_seconds"]["snapshot"] = round(time.perf_counter() - started, 3)
    if not dry:
        reports.mkdir(parents=True, exist_ok=True)
        (reports / f"ingest-{stamp}-summary.json").write_text(
            json.dumps(result.summary, indent=2) + "\n"
        )
    return result


def _generation(store: VectorStore, *, rebuild: bool, verify: bool) -> Generation | None:
    """The new collection a job must build, or None to write into the live one (checked)."""
    if store.needs_reindex:
        generation = store.begin_generation()
        log.info("models or schema changed: building %s beside the live one", generation.name)
        return generation
    if rebuild:
        generation = store.begin_generation()
        log.info("rebuilding from the files into %s", generation.name)
        return generation
    if verify and store.mode == "embedded":
        # A damaged shard would take writes and fail every read; a server keeps its own disk
        # (and reading a million points back over the network is not a pre-flight check).
        check_readable(store)
    return None


def _run_job(job: IngestJob) -> JobResult:
    try:
        return job.run()
    except Exception as exc:
        # A cache, report or store write the disk refused: exit 2 with the reason, not a bug.
        full = as_disk_full(exc, "the ingest job")
        if full is None or full is exc:
            raise
        raise full from exc


def _optimize(store: VectorStore, result: JobResult) -> None:
    started = time.perf_counter()
    try:
        if store.optimize():
            log.info("store optimised in %.1f s", time.perf_counter() - started)
    except DiskFullError as exc:  # everything is written: compacting can wait
        log.warning("store not optimised: %s", exc)
    result.summary["stage_seconds"]["optimize"] = round(time.perf_counter() - started, 3)


def current_manifest(snapshots: Path, live: Collection) -> SnapshotManifest | None:
    """The published snapshot's manifest when it holds exactly what ``live`` holds now, else
    None (a snapshot is due)."""
    try:
        name = current_snapshot_name(snapshots)
        if name is None:
            return None
        manifest = SnapshotManifest.from_json(
            (snapshots / name / MANIFEST_FILE).read_text(encoding="utf-8")
        )
    except (OSError, ValueError, TypeError, KeyError, SnapshotError):
        return None  # unreadable or damaged: export a good one
    return manifest if freshness(manifest, live).is_current else None
