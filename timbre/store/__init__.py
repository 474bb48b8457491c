"""Vectors and payloads in Qdrant (embedded Qdrant Edge or a server), and the FAISS snapshot.

Qdrant is the source of truth and answers filtered searches; the exact snapshot, exported
from the same vectors, answers unfiltered ones (and broad filtered ones while it is current)
with identical ids and scores.

Under ``settings.data_dir``: ``qdrant-edge/``, the embedded store (:mod:`timbre.store.edge`),
and ``snapshots/`` (:mod:`timbre.store.snapshot`).

:func:`open_store` (once per process) returns a :class:`VectorStore`, the facade over either
engine: its generations, and :meth:`VectorStore.live`, the live :class:`Collection` that every
read and write goes to.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from timbre.store.collection import (
    Collection,
    CollectionInfo,
    Hit,
    Point,
    Record,
    WriteMarker,
)
from timbre.store.filters import SearchFilter
from timbre.store.lifecycle import Generation, VectorStore
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

    ``reindex``: open even if the live collection was built by other models or another schema,
    to build and publish a new generation. ``client``: a ready qdrant-client client (e.g.
    ``QdrantClient(":memory:")``), which the caller keeps. ``schema``: read from
    ``qdrant/collection.yaml`` if omitted.

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

        store: VectorStore = EdgeStore(
            embedded_dir(settings.data_dir),
            info=info,
            schema=schema,
            settings=settings.qdrant,
            min_free_bytes=settings.disk.min_free_bytes,
        )
    else:
        from timbre.store.server import ServerStore, make_client

        store = ServerStore(
            client or make_client(settings.qdrant),
            info=info,
            schema=schema,
            settings=settings.qdrant,
            owns_client=client is None,
        )
    return store._started(reindex)


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
