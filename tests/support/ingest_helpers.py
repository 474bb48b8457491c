"""Helpers for ingest tests: run a job in-process on a fresh data dir, read the store back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ingest.job import options_from_settings, run_ingest
from ingest.options import JobResult
from timbre.settings import Settings, load_settings
from timbre.store import open_store


def job_settings(bundle: Path, data_dir: Path, **ingest: Any) -> Settings:
    return load_settings(
        data_dir=data_dir,
        models={"bundle": bundle, "threads": 2},
        ingest={"progress_interval_s": 0.2, **ingest},
    )


def ingest(settings: Settings, embedder: Any, roots: list[Path], **options: Any) -> JobResult:
    snapshot = options.pop("snapshot", None)
    store = open_store(settings, embedder.info, reindex=True)
    try:
        return run_ingest(
            settings,
            options_from_settings(settings, tuple(roots), **options),
            embedder=embedder,
            model=embedder.info,
            store=store,
            snapshot=snapshot,
        )
    finally:
        store.close()


def read_store(settings: Settings, embedder: Any) -> dict[str, tuple[dict[str, Any], np.ndarray]]:
    """Every point: id -> (payload without the ingest time, vector)."""
    store = open_store(settings, embedder.info)
    try:
        out = {}
        for record in store.live().scroll(with_vectors=True):
            payload = {k: v for k, v in record.payload.items() if k != "ingested_at"}
            assert record.vector is not None
            out[record.id] = (payload, np.asarray(record.vector))
        return out
    finally:
        store.close()


def stored_paths(settings: Settings, embedder: Any) -> set[str]:
    """Every path of every stored point."""
    return {p for payload, _ in read_store(settings, embedder).values() for p in payload["paths"]}
