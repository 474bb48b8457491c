"""The SearchService: a query becomes a vector, the vector goes to the right engine, hits come back.

Routing (:mod:`timbre.search.routing`): a query without a filter is answered by the exact
snapshot (same ids and scores as Qdrant, without a round trip); a filtered query by the
snapshot's filtered scan when it is current and the filter broad, else by Qdrant with its
payload indexes. When Qdrant is unreachable, unfiltered queries keep answering from the
snapshot and filtered ones fail with :class:`UnavailableError`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from timbre.audio.decode import decode_bytes, decode_file
from timbre.diskspace import DiskReserve
from timbre.embedding.info import ModelInfo
from timbre.errors import (
    InvalidRequestError,
    NotFoundError,
    StoreError,
    UnavailableError,
)
from timbre.library_roots import LibraryRoots
from timbre.search import palette, routing, status
from timbre.search.batcher import TextBatcher
from timbre.search.holders import Lazy, SnapshotHolder, StoreHandle
from timbre.search.routing import RoutingPolicy
from timbre.search.served import ServedFiles
from timbre.search.types import (
    AudioRef,
    BatchQuery,
    SearchResult,
    ServiceLimits,
    TextCache,
    check_id,
    normalize,
)
from timbre.store import Hit, SearchFilter, point_id
from timbre.store.snapshot import export_snapshot

log = logging.getLogger(__name__)


class SearchService:
    """Answers every kind of query; the API and the CLI call this, nothing else.

    Args:
        info: the loaded models (vectors and snapshots must match them).
        text: the text embedder, loaded at start.
        audio: the audio embedder, loaded when first needed.
        store: the live Qdrant collection.
        snapshots: the FAISS snapshot in use.
        limits: input limits and the allowed library roots.
        model_lock: serialises torch work, so two requests never fight over the cores.
        on_embed: called with (kind, seconds) after each embedding, for metrics.
        routing: when filtered queries go to the snapshot; None = always to Qdrant.
        disk: the data dir's free-space reserve, reported by readiness; None = not reported.
    """

    def __init__(
        self,
        *,
        info: ModelInfo,
        text: Lazy[Any],
        audio: Lazy[Any],
        store: StoreHandle,
        snapshots: SnapshotHolder,
        limits: ServiceLimits,
        model_lock: threading.Lock | None = None,
        on_embed: Callable[[str, float], None] | None = None,
        routing: RoutingPolicy | None = None,
        disk: DiskReserve | None = None,
    ) -> None:
        self.info = info
        self.disk = disk
        self.text = text
        self.audio = audio
        self.store = store
        self.snapshots = snapshots
        self.limits = limits
        self.model_lock = model_lock or threading.Lock()
        self.on_embed = on_embed
        self.routing = routing
        self.text_cache = TextCache(limits.text_cache_size)
        self.text_batcher = TextBatcher(self._embed_texts, limits.text_batch_max)
        # The one roots check of every route that reads a file (fails closed: no roots, no file).
        self.roots = LibraryRoots(limits.library_roots, problem=limits.roots_problem)
        self.files = ServedFiles(self.roots, limits.max_file_bytes)
        self.waiting = 0  # requests queued for the models (a metrics gauge)
        self._waiting_lock = threading.Lock()

    # -- query vectors ----------------------------------------------------------------------

    def _embed(self, kind: str, fn: Callable[[], np.ndarray]) -> np.ndarray:
        with self._waiting_lock:
            self.waiting += 1
        try:
            self.model_lock.acquire()
        finally:
            with self._waiting_lock:
                self.waiting -= 1
        try:
            started = time.perf_counter()
            out = fn()
        finally:
            self.model_lock.release()
        if self.on_embed is not None:
            self.on_embed(kind, time.perf_counter() - started)
        return out

    def text_vector(self, query: str) -> np.ndarray:
        if not query.strip():
            raise InvalidRequestError("the query text is empty")
        cached = self.text_cache.get(query)
        if cached is not None:
            return cached
        vector = self.text_batcher.embed(query)
        self.text_cache.put(query, vector)
        return vector

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        embedder = self.text.get()
        return self._embed("text", lambda: embedder.embed(texts))

    def text_vectors(self, queries: Sequence[str]) -> list[np.ndarray]:
        """Vectors of several queries, the uncached ones in one tower batch."""
        out: list[np.ndarray | None] = [self.text_cache.get(q) for q in queries]
        missing = sorted({q for q, v in zip(queries, out, strict=True) if v is None})
        if missing:
            if any(not q.strip() for q in missing):
                raise InvalidRequestError("a query text is empty")
            embedder = self.text.get()
            vectors = self._embed("text", lambda: embedder.embed(missing))
            fresh = dict(zip(missing, vectors, strict=True))
            for q, v in fresh.items():
                self.text_cache.put(q, v)
            out = [v if v is not None else fresh[q] for q, v in zip(queries, out, strict=True)]
        return [v for v in out if v is not None]

    def audio_vector(self, ref: AudioRef) -> np.ndarray:
        if ref.id is not None:
            vector = self.stored_vector(ref.id)
            if vector is None:
                raise NotFoundError(f"no indexed item {ref.id}")
            return vector
        if ref.path is not None:
            path = self.allowed_path(ref.path)
            # A file already in the index needs no model run: use its stored vector.
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            known = self.stored_vector(point_id(digest))
            if known is not None:
                return known
            samples = decode_file(
                path,
                sample_rate=self._audio_rate(),
                max_duration_s=self.limits.max_duration_s,
                max_file_bytes=self.limits.max_file_bytes,
                resampler=self.audio.get().resampler,
            ).samples
        else:
            assert ref.upload is not None
            if len(ref.upload) > self.limits.max_upload_bytes:
                raise InvalidRequestError("upload too large")  # the API checks this first (413)
            samples = decode_bytes(
                ref.upload,
                ref.upload_name,
                sample_rate=self._audio_rate(),
                max_duration_s=self.limits.max_upload_duration_s,
                resampler=self.audio.get().resampler,
            ).samples
        embedder = self.audio.get()
        return self._embed("audio", lambda: embedder.embed([samples])[0])

    def _audio_rate(self) -> int:
        return int(self.audio.get().sample_rate)

    def stored_vector(self, item_id: str) -> np.ndarray | None:
        check_id(item_id)
        snapshot = self.snapshots.current
        if snapshot is not None:
            vector = snapshot.vector(item_id)
            if vector is not None:
                return vector
        try:
            return self.store.get().live().vector(item_id)
        except UnavailableError:
            if snapshot is None:
                raise
            return None

    def allowed_path(self, path: str) -> Path:
        """Resolve ``path`` (``..``, symlinks) and accept a file only inside the library roots."""
        real = self.allowed_folder(path)
        if not real.is_file():
            raise NotFoundError(f"{path!r} is not a file")
        return real

    def allowed_folder(self, path: str) -> Path:
        """A library folder (or file) inside the roots, for ingest requests."""
        if "\x00" in path:  # no file name can hold one; the OS calls would raise ValueError
            raise InvalidRequestError(f"path {path!r} contains a NUL byte")
        return self.roots.check(path)

    # -- routing ----------------------------------------------------------------------------

    def route(
        self,
        vector: np.ndarray,
        *,
        top_k: int,
        offset: int = 0,
        filter: SearchFilter | None = None,
        exclude: frozenset[str] = frozenset(),
    ) -> tuple[list[Hit], str]:
        """Hits for a query vector and the engine that found them (see :mod:`routing`).

        ``exclude`` drops those ids from the hits; as many more are asked for, the same way on
        every engine, so the results do not depend on which one answers.
        """
        routed = self._route(vector, top_k=top_k, offset=offset, filter=filter, exclude=exclude)
        return routed.hits, routed.engine

    def _route(
        self,
        vector: np.ndarray,
        *,
        top_k: int,
        offset: int,
        filter: SearchFilter | None,
        exclude: frozenset[str] = frozenset(),
    ) -> routing.Routed:
        routed = routing.search(
            self.snapshots.current,
            self.store,
            self.routing,
            vector,
            top_k=top_k + len(exclude),
            offset=offset,
            filter=filter,
        )
        hits = [h for h in routed.hits if h.id not in exclude][:top_k] if exclude else routed.hits
        return routed._replace(hits=hits)

    def _timed(
        self,
        make_vector: Callable[[], np.ndarray],
        *,
        top_k: int,
        offset: int,
        filter: SearchFilter | None,
        query: dict[str, Any],
    ) -> SearchResult:
        """Compute the query vector, route it, and time both."""
        started = time.perf_counter()
        routed = self._route(make_vector(), top_k=top_k, offset=offset, filter=filter)
        took_ms = (time.perf_counter() - started) * 1e3
        total = routed.matching if routed.matching is not None else self.matching(filter)
        return SearchResult(routed.engine, took_ms, routed.hits, query, total=total)

    def matching(self, filter: SearchFilter | None) -> int | None:
        """How many indexed samples pass ``filter`` (all without one); None if nobody can say.

        Unfiltered, the snapshot's size (what FAISS searched); filtered, Qdrant's exact count.
        """
        snapshot = self.snapshots.current
        if (filter is None or filter.is_empty) and snapshot is not None:
            return len(snapshot)
        try:
            return self.store.get().live().count(filter)
        except (UnavailableError, StoreError):
            return None

    # -- queries ----------------------------------------------------------------------------

    def search_text(
        self, query: str, *, top_k: int, offset: int = 0, filter: SearchFilter | None = None
    ) -> SearchResult:
        return self._timed(
            lambda: self.text_vector(query),
            top_k=top_k,
            offset=offset,
            filter=filter,
            query={"text": query},
        )

    def search_audio(
        self, ref: AudioRef, *, top_k: int, offset: int = 0, filter: SearchFilter | None = None
    ) -> SearchResult:
        return self._timed(
            lambda: self.audio_vector(ref),
            top_k=top_k,
            offset=offset,
            filter=filter,
            query=ref.describe(),
        )

    def search_hybrid(
        self,
        query: str,
        ref: AudioRef,
        *,
        alpha: float,
        top_k: int,
        offset: int = 0,
        filter: SearchFilter | None = None,
    ) -> SearchResult:
        """``alpha`` = weight of the text (1 = pure text, 0 = pure audio)."""
        if not 0.0 <= alpha <= 1.0:
            raise InvalidRequestError("alpha must lie in [0, 1]")

        def mixed() -> np.ndarray:
            return normalize(
                alpha * self.text_vector(query) + (1.0 - alpha) * self.audio_vector(ref)
            )

        info = {"text": query, "alpha": alpha, **ref.describe()}
        return self._timed(mixed, top_k=top_k, offset=offset, filter=filter, query=info)

    def search_batch(
        self, queries: Sequence[BatchQuery], *, distinct: bool = False
    ) -> list[SearchResult]:
        """Several text queries, embedded together; with ``distinct`` no sample fills two slots.
        The palette rules (a context's tempo, slot names, empty slots) are in :mod:`palette`."""
        return palette.search_batch(self, queries, distinct=distinct)

    # -- items ------------------------------------------------------------------------------

    def item(self, item_id: str) -> dict[str, Any]:
        check_id(item_id)
        snapshot = self.snapshots.current
        payload = snapshot.payload(item_id) if snapshot is not None else None
        if payload is None:
            try:
                records = self.store.get().live().retrieve([item_id])
            except UnavailableError:
                records = []
            if not records:
                raise NotFoundError(f"no indexed item {item_id}")
            payload = records[0].payload
        return payload

    def item_file(self, item_id: str) -> Path:
        """The file of an indexed item that may be read: inside the library roots and still
        holding the indexed content (see :mod:`timbre.search.served`)."""
        return self.files.file_of(item_id, self.item(item_id))

    def open_item_file(self, item_id: str) -> tuple[Path, BinaryIO]:
        """:meth:`item_file`, opened: send these checked bytes, then close the handle."""
        return self.files.open_of(item_id, self.item(item_id))

    def export_snapshot(self) -> dict[str, Any]:
        """Export the live collection into a new snapshot, publish it and serve it now."""
        store = self.store.get()
        manifest = export_snapshot(
            store.live(),
            self.snapshots.directory,
            source_mode=store.mode,
            keep=self.limits.snapshot_keep,
        )
        self.snapshots.refresh()
        return {"name": manifest.name, "count": manifest.count, "created_at": manifest.created_at}

    # -- state ------------------------------------------------------------------------------

    def readiness(self) -> dict[str, Any]:
        """What ``/readyz`` reports (see :mod:`timbre.search.status`)."""
        return status.readiness(self)

    def stats(self) -> dict[str, Any]:
        """What ``/v1/stats`` reports (see :mod:`timbre.search.status`)."""
        return status.stats(self)
