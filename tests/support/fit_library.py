"""A library built for the project-context tests: its vectors are placed around a text query's
own vector, so which sample scores highest is known, and so is which one fits the project."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from timbre.embedding.embedder import describe_models
from timbre.embedding.files import resolve_model_files
from timbre.settings import Settings
from timbre.store import Point, build_payload, open_store, point_id, snapshots_dir
from timbre.store.snapshot import export_snapshot

QUERY = "warm rolling bass loop"
PROJECT = {"bpm": 124, "key": "Am"}


@dataclass(frozen=True)
class FitLibrary:
    """``top``: the query's closest sample, which does not fit :data:`PROJECT` (100 BPM, 24 %
    of stretch); ``runner_up``: a hair further, which fits it (123 BPM in C, Am's relative);
    ``others``: further still, half of them fitting."""

    top: str
    runner_up: str
    others: tuple[str, ...]


def _payload(settings: Settings, info: Any, name: str, bpm: float, key: str) -> dict[str, Any]:
    descriptive = {
        "pack": "Fit Test",
        "genre": "techno",
        "bpm": bpm,
        "key": key,
        "instrument": "bass",
        "kind": "loop",
        "duration_s": 4.0,
        "sample_rate": 44100,
        "channels": 2,
        "format": "wav",
        "bpm_source": "name",
        "key_source": "name",
    }
    sha = hashlib.sha256(name.encode()).hexdigest()
    path = str(settings.data_dir / "Samples" / f"{name}.wav")
    return build_payload(descriptive, content_sha256=sha, paths=[path], model=info)


def write_fit_library(settings: Settings, query_vector: np.ndarray) -> FitLibrary:
    """Index the library into ``settings.data_dir`` (the store and a published snapshot)."""
    info = describe_models(settings.models, resolve_model_files(settings.models))
    q = np.asarray(query_vector, dtype=np.float32)
    q = q / np.linalg.norm(q)
    rng = np.random.default_rng(7)

    def near(distance: float) -> np.ndarray:
        noise = rng.standard_normal(q.shape).astype(np.float32)
        noise -= float(noise @ q) * q  # orthogonal to the query: the cosine is set exactly
        v = q + distance * noise / np.linalg.norm(noise)
        return (v / np.linalg.norm(v)).astype(np.float32)

    rows = [("top", q, 100.0, "Am"), ("runner_up", near(0.05), 123.0, "C")]
    rows += [(f"other_{i}", near(0.5 + 0.1 * i), 125.0 if i % 2 else 90.0, "Am") for i in range(8)]
    points = [Point.of(v, _payload(settings, info, n, b, k)) for n, v, b, k in rows]
    store = open_store(settings, info)
    try:
        store.live().upsert(points)
        export_snapshot(
            store.live(), snapshots_dir(settings.data_dir), source_mode=store.mode, keep=2
        )
    finally:
        store.close()
    ids = [point_id(p.payload["content_sha256"]) for p in points]
    return FitLibrary(ids[0], ids[1], tuple(ids[2:]))
