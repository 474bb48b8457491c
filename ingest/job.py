"""Wiring of one ingest job from settings, loaded models and an open store.

Used by ``timbre ingest`` and by the API's ingest endpoint (through the composition root), so
both run the same job the same way.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from ingest.cache import FeatureCache, HashCache
from ingest.metadata import MetadataRules
from ingest.pipeline import Embedder, IngestJob, JobOptions, JobResult, Limits
from ingest.report import Counts, FailureLog
from timbre.embedding.info import ModelInfo
from timbre.embedding.runtime import select_device
from timbre.labels import Labeller
from timbre.settings import Settings
from timbre.store import VectorStore, snapshots_dir
from timbre.store.snapshot import export_snapshot

log = logging.getLogger("timbre.ingest")


def options_from_settings(
    settings: Settings, roots: tuple[Path, ...], **overrides: object
) -> JobOptions:
    """Job options: the ``ingest`` settings, then explicit overrides (None = keep)."""
    device = select_device(settings.models.device).type
    base = JobOptions(
        roots=roots,
        profile=settings.ingest.profile,
        workers=settings.ingest.workers,
        batch_files=settings.ingest.batch_files.on(device),
        batch_audio_s=settings.ingest.batch_audio_s,
        progress_interval_s=settings.ingest.progress_interval_s,
    )
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]


def run_ingest(
    settings: Settings,
    options: JobOptions,
    *,
    embedder: Embedder,
    model: ModelInfo,
    store: VectorStore,
    snapshot: bool | None = None,
    listener: Callable[[Counts], None] | None = None,
    labeller: Labeller | None = None,
) -> JobResult:
    """Run one job: index the roots, publish a re-index if one was built, export a snapshot.

    When the live collection was built by other models (or another schema), the job builds a
    new versioned collection and publishes it when complete, so searches never see a half-built
    index. A sharded job (one of several workers) leaves publishing to ``timbre store publish``.
    With a ``labeller``, every new point gets its zero-shot labels before it is written.
    """
    data = settings.data_dir
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    reports = data / "reports"
    generation = store.begin_generation() if store.needs_reindex and not options.dry_run else None
    if generation is not None:
        log.info(
            "models or schema changed: building %s beside the live collection", generation.name
        )
    dry = options.dry_run
    job = IngestJob(
        options,
        embedder=embedder,
        store=generation or store,
        rules=MetadataRules.from_settings(settings.ingest),
        limits=Limits(
            embedder.sample_rate, settings.audio.max_duration_s, settings.audio.max_file_bytes
        ),
        model=model,
        hash_cache=None if dry else HashCache(data / "cache" / "hashes.sqlite"),
        feature_cache=None
        if dry
        else FeatureCache(data / "cache" / "mert", model.mert, model.pipeline_version),
        failures=FailureLog(None if dry else reports / f"ingest-{stamp}-failures.jsonl"),
        listener=listener,
        labeller=labeller,
    )
    result = job.run()
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
        manifest = export_snapshot(
            store, snapshots_dir(data), source_mode=store.mode, keep=settings.snapshot.keep
        )
        result.summary["stage_seconds"]["snapshot"] = round(time.perf_counter() - started, 3)
        result.summary["snapshot"] = {"name": manifest.name, "count": manifest.count}
    if not dry:
        reports.mkdir(parents=True, exist_ok=True)
        (reports / f"ingest-{stamp}-summary.json").write_text(
            json.dumps(result.summary, indent=2) + "\n"
        )
    return result
