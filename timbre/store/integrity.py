"""Reading a whole collection back, and rebuilding one whose files are damaged.

Qdrant Edge opens a shard whose payload or vector file was truncated without complaint; the
damage shows only when a page is read. :func:`damage_of` reads every point once to find it
(ingest refuses to write into such a collection, the service reports it);
:func:`rebuild_from_snapshot` writes the published snapshot's points into a new collection and
makes it the live one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from timbre.embedding.info import ModelInfo
from timbre.errors import StoreDamagedError, StoreError
from timbre.store.lifecycle import VectorStore
from timbre.store.payload import model_refs
from timbre.store.records import Point
from timbre.store.snapshot import load_snapshot

log = logging.getLogger(__name__)

REBUILD_HINT = (
    "Rebuild it from the published snapshot with `timbre store rebuild`, or from the library's "
    "files with `timbre store rebuild --from-files` (stop the service first: the store has one "
    "owner)."
)


def damage_of(store: VectorStore) -> str | None:
    """Why the live collection cannot be read back whole, or None when every point reads
    (reads every payload and vector once)."""
    try:
        live = store.live()
        name = live.name
        expected = live.count()
        seen = sum(1 for _ in live.scroll(with_vectors=True))
    except StoreError as exc:
        return f"the live collection cannot be read back: {exc}"
    if seen != expected:
        return f"the live collection {name} counts {expected} points, but {seen} read back"
    return None


def check_readable(store: VectorStore) -> None:
    """Raises: StoreDamagedError: the live collection cannot be read back whole."""
    damage = damage_of(store)
    if damage is not None:
        raise StoreDamagedError(f"{damage}. Its files are damaged. {REBUILD_HINT}")


def rebuild_from_snapshot(store: VectorStore, snapshots: Path, info: ModelInfo) -> dict[str, Any]:
    """Write the published snapshot (checksums verified) into a new collection and make it the
    live one; returns what was done, with the points the damaged collection counted (those
    written after the snapshot are back at the next ingest of their files)."""
    snapshot = load_snapshot(snapshots, info, mmap_min_bytes=0, verify_checksums=True)
    manifest = snapshot.manifest
    try:
        before: int | None = store.live().count()
    except StoreError:
        before = None
    generation = store.begin_generation()
    log.info("rebuilding from snapshot %s into %s", manifest.name, generation.name)

    def points() -> Iterator[Point]:
        for pid in snapshot.ids():
            payload = snapshot.payload(pid) or {}
            # Kept once in the manifest, not per row; the snapshot was checked to be theirs.
            payload["model"] = model_refs(info)
            payload["pipeline_version"] = info.pipeline_version
            vector = snapshot.vector(pid)
            assert vector is not None
            yield Point(pid, vector, payload)

    written = generation.upsert(points())
    generation.publish()
    snapshot.close()
    return {
        "rebuilt_from": f"snapshot {manifest.name}",
        "collection": generation.name,
        "points": written,
        "damaged_collection_counted": before,
    }
