"""Vectors and payloads in Qdrant (embedded Qdrant Edge or a server), and the FAISS snapshot.

Qdrant is the source of truth and answers filtered searches; the exact snapshot, exported
from the same vectors, answers unfiltered ones (and broad filtered ones while it is current)
with identical ids and scores.

Everything Timbre writes lives under ``settings.data_dir``::

    <data_dir>/
      qdrant-edge/     the embedded store (see timbre.store.edge): OWNER lock, LIVE pointer,
                       collections/<versioned name>/{shard/, collection.json}
      snapshots/       FAISS snapshots (see timbre.store.snapshot): CURRENT pointer,
                       <000001>/{vectors.npy, sq8_codes.npy, sq8_params.npy, ids.npy,
                       id_order.npy, payloads.jsonl, payload_offsets.npy, columns/,
                       manifest.json}

Entry points: :func:`open_store` (one per process, from the composition root),
:func:`~timbre.store.snapshot.export_snapshot`, :func:`~timbre.store.snapshot.load_snapshot`
and :func:`~timbre.store.snapshot.freshness`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from timbre.store.filters import SearchFilter
from timbre.store.interface import (
    Collection,
    CollectionInfo,
    Generation,
    Hit,
    Point,
    Record,
    VectorStore,
    WriteMarker,
)
from timbre.store.payload import DISPLAY_FIELDS, build_payload, point_id
from timbre.store.schema import CollectionSchema, load_schema

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from timbre.embedding.info import ModelInfo
    from timbre.settings import Settings

EMBEDDED_DIR = "qdrant-edge"
SNAPSHOTS_DIR = "snapshots"


def embedded_dir(data_dir: Path) -> Path:
    """Where the embedded Qdrant Edge store lives."""
    return data_dir / EMBEDDED_DIR


def snapshots_dir(data_dir: Path) -> Path:
    """Where FAISS snapshots are published."""
    return data_dir / SNAPSHOTS_DIR


def open_store(
    settings: Settings,
    info: ModelInfo,
    *,
    reindex: bool = False,
    client: QdrantClient | None = None,
    schema: CollectionSchema | None = None,
) -> VectorStore:
    """Open the store this process was configured for, once, from the composition root.

    Embedded (Qdrant Edge under ``data_dir``) when ``settings.qdrant.url`` is null and no
    ``client`` is given; otherwise server mode through ``client`` or a client built from
    the settings.

    Args:
        settings: the process settings.
        info: the loaded models; the live collection must match them.
        reindex: open even if the live collection was built by other models or another
            schema, to build and publish a new generation (the ingest job's re-index).
        client: a ready qdrant-client client (e.g. ``QdrantClient(":memory:")``); the
            caller keeps ownership of it.
        schema: the collection schema (read from ``qdrant/collection.yaml`` if omitted).

    Raises:
        StoreLockedError: embedded, and another process owns the store.
        SchemaMismatchError: the live collection's vector size, distance or schema version
            does not match.
        ModelMismatchError: the live collection was built by other models.
        StoreError: the store cannot be reached or read.
    """
    schema = schema or load_schema()
    if client is None and settings.qdrant.url is None:
        from timbre.store.edge import EdgeStore

        return EdgeStore.open(
            embedded_dir(settings.data_dir),
            info=info,
            schema=schema,
            settings=settings.qdrant,
            reindex=reindex,
            min_free_bytes=settings.disk.min_free_bytes,
        )
    from timbre.store.server import ServerStore, make_client

    return ServerStore.open(
        client or make_client(settings.qdrant),
        info=info,
        schema=schema,
        settings=settings.qdrant,
        reindex=reindex,
        owns_client=client is None,
    )


__all__ = [
    "DISPLAY_FIELDS",
    "Collection",
    "CollectionInfo",
    "CollectionSchema",
    "Generation",
    "Hit",
    "Point",
    "Record",
    "SearchFilter",
    "VectorStore",
    "WriteMarker",
    "build_payload",
    "embedded_dir",
    "load_schema",
    "open_store",
    "point_id",
    "snapshots_dir",
]
