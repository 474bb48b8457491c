"""Server mode: qdrant-client against a Qdrant server (or its in-memory stand-in in tests).

The live collection is the alias ``qdrant.collection``; searches and writes address the
alias, so every process follows a swap (``update_collection_aliases`` deletes and recreates
it in one atomic request). Timbre's metadata (models, schema version, publication time,
write marker) lives in the collection's own metadata (Qdrant >= 1.16). Every request is
retried on transient failures (:func:`call_with_retries`); all of them are idempotent. The
primitives on one collection are :class:`~timbre.store.server_backend.ServerBackend`'s.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Literal, TypeVar

from qdrant_client import QdrantClient
from qdrant_client import models as qm

from timbre.embedding.info import ModelInfo
from timbre.errors import StoreError
from timbre.settings import QdrantSettings
from timbre.store.collection import Collection
from timbre.store.lifecycle import Generation, VectorStore
from timbre.store.schema import CollectionSchema
from timbre.store.server_backend import ServerBackend

T = TypeVar("T")

log = logging.getLogger(__name__)

_DISTANCES = {"Cosine": qm.Distance.COSINE, "Dot": qm.Distance.DOT}
TRANSIENT_HTTP_STATUS = frozenset({408, 429, 502, 503, 504})
"""Timeouts, rate limiting, a proxy or server (re)starting; a 500 is a bug, not a blip."""

_TRANSIENT_GRPC_CODES = frozenset(
    {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED"}
)


def is_transient(exc: BaseException) -> bool:
    """True for failures a retry can cure: network errors, timeouts, 429/502/503/504."""
    import httpx
    from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if isinstance(
        exc, ResourceExhaustedResponse | ConnectionError | TimeoutError | httpx.TransportError
    ):
        return True
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code in TRANSIENT_HTTP_STATUS
    if isinstance(exc, ResponseHandlingException):
        # Wraps both transport failures (transient) and unparsable responses (not).
        return isinstance(exc.source, httpx.TransportError | ConnectionError | TimeoutError)
    code = getattr(exc, "code", None)
    if callable(code):  # grpc.RpcError, without importing grpc
        status = getattr(code(), "name", "")
        return status in _TRANSIENT_GRPC_CODES
    return False


def call_with_retries(
    fn: Callable[[], T],
    *,
    what: str,
    max_attempts: int,
    backoff_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``fn``; on a transient failure wait (``backoff_s``, doubling, or the server's
    Retry-After) and try again, up to ``max_attempts`` in all. Any other failure, or the last
    transient one, is raised as StoreError."""
    for attempt in range(1, max_attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc):
                raise StoreError(f"Qdrant {what} failed: {exc}") from exc
            if attempt == max_attempts:
                raise StoreError(
                    f"Qdrant {what} failed after {max_attempts} attempts "
                    f"(transient errors; is the server up?): {exc}"
                ) from exc
            retry_after_s = float(getattr(exc, "retry_after_s", 0) or 0)
            wait_s = max(backoff_s * 2 ** (attempt - 1), retry_after_s)
            log.warning(
                "Qdrant %s: transient failure (%s), attempt %d of %d, retrying in %.2f s",
                what,
                exc,
                attempt,
                max_attempts,
                wait_s,
            )
            sleep(wait_s)
    raise AssertionError("unreachable")  # pragma: no cover


def make_client(settings: QdrantSettings) -> QdrantClient:
    """A client for the server at ``settings.url`` (built once per process, then passed in)."""
    assert settings.url is not None
    return QdrantClient(
        url=settings.url,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        timeout=settings.timeout_s,
        prefer_grpc=settings.prefer_grpc,
    )


class ServerStore(VectorStore):
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
        """The live collection on the server ``client`` talks to; ``owns_client``: close the
        client with the store."""
        super().__init__(info=info, schema=schema, settings=settings)
        self._client = client
        self._owns_client = owns_client
        alias = ServerBackend(
            client,
            settings.collection,
            self._request,
            dim=info.dim,
            is_alias=True,
            distance=schema.distance,
        )
        self._live = Collection(alias, settings)

    def _request(self, what: str, fn: Callable[[], T]) -> T:
        return call_with_retries(
            fn,
            what=f"{what} at {self.settings.url or 'the given client'}",
            max_attempts=self.settings.max_attempts,
            backoff_s=self.settings.retry_backoff_s,
        )

    def _backend(self, name: str) -> ServerBackend:
        return ServerBackend(
            self._client,
            name,
            self._request,
            dim=self.info.dim,
            is_alias=False,
            distance=self.schema.distance,
        )

    # -- primitives -------------------------------------------------------------------------

    def _collection_names(self) -> list[str]:
        return sorted(
            c.name
            for c in self._request("list collections", self._client.get_collections).collections
        )

    def _meta_of(self, name: str) -> dict[str, Any]:
        return self._backend(name).read_meta()

    def _create_backend(self, name: str, meta: dict[str, Any]) -> ServerBackend:
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

    def _open_backend(self, name: str) -> ServerBackend:
        backend = self._backend(name)
        backend.ensure_indexes(self.schema.indexes)
        return backend

    def _live_name(self) -> str | None:
        aliases = self._request("list aliases", self._client.get_aliases).aliases
        return next(
            (a.collection_name for a in aliases if a.alias_name == self.settings.collection), None
        )

    def _swap_live(self, generation: Generation) -> None:
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

    def live(self) -> Collection:
        return self._live

    def flush(self) -> None:
        """Nothing to do: the server acknowledged every write (``wait=True``)."""

    def optimize(self) -> bool:
        """Nothing to do: the server's optimisers run in the background."""
        return False

    def close(self) -> None:
        if self._owns_client:
            with contextlib.suppress(Exception):
                self._client.close()
