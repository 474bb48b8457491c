"""Server mode: qdrant-client against a Qdrant server (or its in-memory stand-in in tests).

The live collection is the alias ``qdrant.collection``; searches and writes address the
alias, so every process follows a swap (``update_collection_aliases`` deletes and recreates
it in one atomic request). Timbre's metadata (models, schema version, publication time,
write marker) lives in the collection's own metadata (Qdrant >= 1.16). Every request is
retried on transient failures (:mod:`timbre.store.retry`); all of them are idempotent.
One collection's reads and writes are :mod:`timbre.store.server_backend`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, Literal, TypeVar

from qdrant_client import QdrantClient
from qdrant_client import models as qm

from timbre.embedding.info import ModelInfo
from timbre.settings import QdrantSettings
from timbre.store.backend import Backend
from timbre.store.collection import CollectionView
from timbre.store.lifecycle import StoreBase, StoreGeneration
from timbre.store.retry import call_with_retries
from timbre.store.schema import CollectionSchema
from timbre.store.server_backend import ServerBackend

T = TypeVar("T")

_DISTANCES = {"Cosine": qm.Distance.COSINE, "Dot": qm.Distance.DOT}


def make_client(settings: QdrantSettings) -> QdrantClient:
    """A client for the server at ``settings.url`` (built once per process, then passed in)."""
    assert settings.url is not None
    return QdrantClient(
        url=settings.url,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        timeout=settings.timeout_s,
        prefer_grpc=settings.prefer_grpc,
    )


class ServerStore(StoreBase):
    """The server store: a Qdrant server reached through qdrant-client."""

    mode: Literal["embedded", "server"] = "server"

    def __init__(
        self,
        client: QdrantClient,
        *,
        info: ModelInfo,
        schema: CollectionSchema,
        settings: QdrantSettings,
        owns_client: bool,
    ) -> None:
        super().__init__(info=info, schema=schema, settings=settings)
        self._client = client
        self._owns_client = owns_client
        self._live = self._view(
            ServerBackend(client, settings.collection, self._request, is_alias=True), info.dim
        )

    @classmethod
    def open(
        cls,
        client: QdrantClient,
        *,
        info: ModelInfo,
        schema: CollectionSchema,
        settings: QdrantSettings,
        reindex: bool = False,
        owns_client: bool = True,
    ) -> ServerStore:
        """Open the live collection on the server ``client`` talks to (creating the first one).

        Args:
            client: a qdrant-client client (``QdrantClient(":memory:")`` in tests).
            info: the loaded models; the live collection must match them.
            schema: the collection schema.
            settings: the ``qdrant`` settings section.
            reindex: tolerate a live collection built by other models or another schema.
            owns_client: close the client when the store is closed.

        Raises:
            StoreError: the server cannot be reached (after retries) or refused a request.
            SchemaMismatchError, ModelMismatchError: as for :meth:`EdgeStore.open`.
        """
        store = cls(client, info=info, schema=schema, settings=settings, owns_client=owns_client)
        return store._started(reindex)

    def _request(self, what: str, fn: Callable[[], T]) -> T:
        return call_with_retries(
            fn,
            what=f"{what} at {self.settings.url or 'the given client'}",
            max_attempts=self.settings.max_attempts,
            backoff_s=self.settings.retry_backoff_s,
        )

    def _backend(self, name: str) -> ServerBackend:
        return ServerBackend(self._client, name, self._request, is_alias=False)

    # -- primitives -------------------------------------------------------------------------

    def _collection_names(self) -> list[str]:
        return sorted(
            c.name
            for c in self._request("list collections", self._client.get_collections).collections
        )

    def _meta_of(self, name: str) -> dict[str, Any]:
        return self._backend(name).read_meta()

    def _create_backend(self, name: str, meta: dict[str, Any]) -> Backend:
        s = self.schema
        self._request(
            f"create collection {name}",
            partial(
                self._client.create_collection,
                name,
                vectors_config=qm.VectorParams(
                    size=self.info.dim,
                    distance=_DISTANCES[s.distance],
                    datatype=qm.Datatype.FLOAT32,
                ),
                shard_number=s.cluster.shard_number,
                replication_factor=s.cluster.replication_factor,
                write_consistency_factor=s.cluster.write_consistency_factor,
                on_disk_payload=s.payload.on_disk,
                hnsw_config=qm.HnswConfigDiff(
                    m=s.hnsw.m,
                    ef_construct=s.hnsw.ef_construct,
                    full_scan_threshold=s.hnsw.full_scan_threshold_kb,
                    payload_m=s.hnsw.payload_m,
                ),
                optimizers_config=qm.OptimizersConfigDiff(
                    indexing_threshold=s.optimizers.server_indexing_threshold_kb
                ),
                metadata=meta,
                timeout=self.settings.timeout_s,
            ),
        )
        backend = self._backend(name)
        backend.ensure_indexes(s.indexes)
        return backend

    def _open_backend(self, name: str) -> Backend:
        backend = self._backend(name)
        backend.ensure_indexes(self.schema.indexes)
        return backend

    def _live_name(self) -> str | None:
        aliases = self._request("list aliases", self._client.get_aliases).aliases
        return next(
            (a.collection_name for a in aliases if a.alias_name == self.settings.collection), None
        )

    def _swap_live(self, generation: StoreGeneration) -> None:
        alias = self.settings.collection
        operations: list[qm.AliasOperations] = []
        if self._live_name() is not None:
            operations.append(
                qm.DeleteAliasOperation(delete_alias=qm.DeleteAlias(alias_name=alias))
            )
        operations.append(
            qm.CreateAliasOperation(
                create_alias=qm.CreateAlias(collection_name=generation.name, alias_name=alias)
            )
        )
        # One request: the server applies both or neither, so the alias always names a
        # complete collection.
        self._request(
            f"point alias {alias} at {generation.name}",
            partial(self._client.update_collection_aliases, change_aliases_operations=operations),
        )

    def _drop(self, name: str) -> None:
        self._request(f"delete collection {name}", partial(self._client.delete_collection, name))

    @contextlib.contextmanager
    def _using_live(self) -> Iterator[CollectionView]:
        yield self._live

    def flush(self) -> None:
        """Nothing to do: the server acknowledged every write (``wait=True``)."""

    def optimize(self) -> bool:
        """Nothing to do: the server's optimisers run in the background."""
        return False

    def close(self) -> None:
        if self._owns_client:
            with contextlib.suppress(Exception):
                self._client.close()
