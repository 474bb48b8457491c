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

from timbre.store.collection import Collection
from timbre.store.filters import SearchFilter
from timbre.store.lifecycle import Generation, VectorStore
from timbre.store.payload import DISPLAY_FIELDS, build_payload, point_id
from timbre.store.records import CollectionInfo, Hit, Point, Record, WriteMarker
from timbre.store.schema import CollectionSchema, load_schema

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from timbre.embedding.info import ModelInfo
    from timbre.settings import Settings


def embedded_dir(data_dir: Path) -> Path:
    """Where the embedded Qdrant Edge store lives."""
    return data_dir / "qdrant-edge"


def snapshots_dir(data_dir: Path) -> Path:
    """Where FAISS snapshots are published."""
    return data_dir / "snapshots"


def open_store(
    settings: Settings,
    info: ModelInfo,
    *,
    reindex: bool = False,
    client: QdrantClient | None = None,
    schema: CollectionSchema | None = None,
) -> VectorStore:
    """Open the store this process was configured for, once, from the composition root.

    Embedded when ``settings.qdrant.url`` is null and no ``client`` (which the caller keeps) is
    given, else server mode. ``reindex`` opens it even when the live collection was built by
    other models or schema (to build a new generation); otherwise that raises
    ModelMismatchError or SchemaMismatchError. StoreLockedError: another process owns it.
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
