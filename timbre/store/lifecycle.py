"""The live collection and its generations, the same policy in both modes.

A *generation* is a versioned collection ``<base>-<key>-<n>`` (see
:mod:`timbre.store.schema`). Exactly one is live: the server alias ``<base>`` or the embedded
``LIVE`` pointer names it. A model, pipeline or schema change builds a new generation beside
the live one; :meth:`StoreGeneration.publish` swaps it in atomically, so searches never see a
half-built collection. An unpublished generation for the same key is resumed, not restarted,
so an interrupted re-index continues where it stopped. After a swap the previous generations
beyond ``qdrant.keep_generations`` are deleted.

Each adapter supplies the primitives (list, create, open, swap, drop) as the abstract
methods of :class:`StoreBase`; everything else is here, once.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Self

import numpy as np

from timbre.embedding.info import ModelInfo, family_of_key
from timbre.errors import ModelMismatchError, SchemaMismatchError, StoreError, TimbreError
from timbre.settings import QdrantSettings
from timbre.store.backend import Backend
from timbre.store.backfill import backfill_derived
from timbre.store.collection import CollectionView
from timbre.store.facets import FacetValue
from timbre.store.filters import SearchFilter
from timbre.store.interface import CollectionInfo, Hit, Point, Record, WriteMarker
from timbre.store.meta import new_meta, utc_now
from timbre.store.payload import DISPLAY_FIELDS
from timbre.store.schema import CollectionSchema, generation_name, parse_generation_name

log = logging.getLogger(__name__)

REINDEX_HINT = (
    "Run `timbre ingest` on the library to re-index: it builds a collection for the "
    "configured models beside the live one and publishes it when complete (searches keep "
    "answering from the old one meanwhile); or configure the models that built the live "
    "collection."
)


class StoreGeneration(CollectionView):
    """A collection being built; :meth:`publish` makes it the live one."""

    def __init__(self, store: StoreBase, backend: Backend) -> None:
        super().__init__(
            backend,
            dim=store.info.dim,
            upsert_batch=store.settings.upsert_batch,
            scroll_batch=store.settings.scroll_batch,
        )
        self._store = store

    def publish(self) -> None:
        """Swap this collection in as the live one (atomic), then prune old generations."""
        self._store._publish(self)

    def abandon(self) -> None:
        """Delete this collection (it must not be live)."""
        self._store._abandon(self)


class StoreBase(ABC):
    """:class:`~timbre.store.interface.VectorStore` behaviour over an adapter's primitives."""

    mode: Literal["embedded", "server"]

    def __init__(
        self, *, info: ModelInfo, schema: CollectionSchema, settings: QdrantSettings
    ) -> None:
        self._info = info
        self.schema = schema
        self.settings = settings
        self._key = schema.collection_key(info)
        self._generations: dict[str, StoreGeneration] = {}

    # -- adapter primitives -----------------------------------------------------------------

    @abstractmethod
    def _collection_names(self) -> list[str]:
        """Names of every collection that exists (live or not)."""

    @abstractmethod
    def _meta_of(self, name: str) -> dict[str, Any]:
        """Timbre metadata of an existing collection, without opening it for writes."""

    @abstractmethod
    def _create_backend(self, name: str, meta: dict[str, Any]) -> Backend:
        """Create a collection from the schema, with its payload indexes and metadata."""

    @abstractmethod
    def _open_backend(self, name: str) -> Backend:
        """Open an existing collection."""

    @abstractmethod
    def _live_name(self) -> str | None:
        """The collection the alias or pointer names, None before the first publish."""

    @abstractmethod
    def _swap_live(self, generation: StoreGeneration) -> None:
        """Point the alias or pointer at ``generation`` in one atomic step."""

    @abstractmethod
    def _drop(self, name: str) -> None:
        """Delete a collection that is not live."""

    @abstractmethod
    def _using_live(self) -> AbstractContextManager[CollectionView]:
        """The live collection, held for the duration of one operation."""

    @abstractmethod
    def flush(self) -> None: ...

    @abstractmethod
    def optimize(self) -> bool: ...

    @abstractmethod
    def close(self) -> None: ...

    # -- opening ----------------------------------------------------------------------------

    @property
    def info(self) -> ModelInfo:
        return self._info

    def _view(self, backend: Backend, dim: int) -> CollectionView:
        """A view of ``backend`` (vectors of ``dim``) with this store's batch sizes."""
        return CollectionView(
            backend,
            dim=dim,
            upsert_batch=self.settings.upsert_batch,
            scroll_batch=self.settings.scroll_batch,
        )

    def _started(self, reindex: bool) -> Self:
        """This store once :meth:`_start` has run; closed (and the error raised) if it failed."""
        try:
            self._start(reindex)
        except BaseException:
            self.close()
            raise
        return self

    def _start(self, reindex: bool) -> None:
        """Adopt the live collection, or create the first one; check it fits the models."""
        if self._live_name() is None:
            log.info("no live collection yet: creating the first one for the loaded models")
            self.begin_generation().publish()
            return
        with self._using_live() as live:
            problem = self._mismatch(live.describe())
            if problem is None:
                # An older collection lacks derived fields (case-insensitive companions):
                # derive them from its payloads, in place, instead of re-indexing.
                backfill_derived(live)
        if problem is None:
            return
        if not reindex:
            raise problem
        log.warning("%s (opened for re-indexing)", problem)

    def _mismatch(self, info: CollectionInfo) -> TimbreError | None:
        where = f"The live collection {info.name!r}"
        if info.dim != self._info.dim or info.distance != self.schema.distance:
            return SchemaMismatchError(
                f"{where} holds {info.dim}-d {info.distance} vectors, but the loaded models "
                f"produce {self._info.dim}-d vectors and the schema asks for "
                f"{self.schema.distance}. {REINDEX_HINT}"
            )
        theirs = family_of_key(info.audio_key)
        if theirs != self._info.family:
            return ModelMismatchError(
                f"{where} holds vectors of the {theirs} model family, but models.family is "
                f"{self._info.family}: vectors of two families cannot be compared. Set "
                f"models.family to {theirs}, or re-index with {self._info.family}. {REINDEX_HINT}"
            )
        if info.audio_key != self._info.audio_key():
            return ModelMismatchError(
                f"{where} was built by {info.audio_key or 'unknown models'}, but the loaded "
                f"models are {self._info.audio_key()}. {REINDEX_HINT}"
            )
        if info.schema_version != self.schema.schema_version:
            return SchemaMismatchError(
                f"{where} has schema version {info.schema_version}, qdrant/collection.yaml is "
                f"version {self.schema.schema_version}. {REINDEX_HINT}"
            )
        return None

    @property
    def needs_reindex(self) -> bool:
        with self._using_live() as live:
            return self._mismatch(live.describe()) is not None

    # -- generations ------------------------------------------------------------------------

    def begin_generation(self) -> StoreGeneration:
        """Start building a collection for the loaded models, or resume an unfinished one."""
        live = self._live_name()
        ours: list[tuple[int, str]] = []
        highest = 0
        for name in self._collection_names():
            parsed = parse_generation_name(self.settings.collection, name)
            if parsed is None:
                continue
            key, number = parsed
            highest = max(highest, number)
            if key == self._key and name != live and not self._meta_of(name).get("published_at"):
                ours.append((number, name))
        if ours:
            name = max(ours)[1]
            if name in self._generations:
                return self._generations[name]
            log.info("resuming the unfinished collection %s", name)
            backend = self._open_backend(name)
        else:
            name = generation_name(
                self.settings.collection, self._key, highest + 1, self._info.family
            )
            log.info("creating collection %s", name)
            meta = new_meta(
                self._info.as_dict(), self._info.audio_key(), self.schema.schema_version
            )
            backend = self._create_backend(name, meta)
        generation = StoreGeneration(self, backend)
        self._generations[name] = generation
        return generation

    def _publish(self, generation: StoreGeneration) -> None:
        if generation.name == self._live_name():
            return
        generation.backend.write_meta({"published_at": utc_now()})
        self._swap_live(generation)
        self._generations.pop(generation.name, None)
        log.info("collection %s is live", generation.name)
        self._prune()

    def _abandon(self, generation: StoreGeneration) -> None:
        if generation.name == self._live_name():
            raise StoreError(f"collection {generation.name} is live and cannot be abandoned")
        self._generations.pop(generation.name, None)
        self._drop(generation.name)

    def _prune(self) -> None:
        """Delete previously live generations beyond ``keep_generations`` (live included)."""
        live = self._live_name()
        previous: list[tuple[str, str]] = []
        for name in self._collection_names():
            if name == live or parse_generation_name(self.settings.collection, name) is None:
                continue
            published_at = self._meta_of(name).get("published_at")
            if published_at:
                previous.append((published_at, name))
        previous.sort(reverse=True)
        for _, name in previous[self.settings.keep_generations - 1 :]:
            log.info("deleting the old collection %s", name)
            self._drop(name)

    # -- every kept generation, for comparing families (``timbre eval``) --------------------

    def generations(self) -> list[tuple[str, dict[str, Any], bool]]:
        """``(name, metadata, is_live)`` of every versioned collection kept in this store."""
        live = self._live_name()
        return [
            (name, self._meta_of(name), name == live)
            for name in self._collection_names()
            if parse_generation_name(self.settings.collection, name) is not None
        ]

    def read_generation(self, name: str, fields: Sequence[str]) -> list[Record]:
        """Every point of the collection ``name`` (live or kept), with its vector."""
        if name == self._live_name():
            return list(self.scroll(fields=fields, with_vectors=True))
        backend = self._open_backend(name)
        try:
            view = self._view(backend, backend.vector_params()[0])
            return list(view.scroll(fields=fields, with_vectors=True))
        finally:
            close = getattr(backend, "close", None)
            if close is not None:
                close()

    # -- the live collection ----------------------------------------------------------------

    @property
    def name(self) -> str:
        with self._using_live() as live:
            return live.name

    def upsert(self, points: Iterable[Point]) -> int:
        with self._using_live() as live:
            return live.upsert(points)

    def delete(self, ids: Sequence[str]) -> None:
        with self._using_live() as live:
            live.delete(ids)

    def set_paths(self, point_id: str, paths: Sequence[str]) -> bool:
        with self._using_live() as live:
            return live.set_paths(point_id, paths)

    def retrieve(self, ids: Sequence[str], *, with_vectors: bool = False) -> list[Record]:
        with self._using_live() as live:
            return live.retrieve(ids, with_vectors=with_vectors)

    def vector(self, point_id: str) -> np.ndarray | None:
        with self._using_live() as live:
            return live.vector(point_id)

    def count(self, filter: SearchFilter | None = None) -> int:
        with self._using_live() as live:
            return live.count(filter)

    def scroll(
        self,
        *,
        filter: SearchFilter | None = None,
        fields: Sequence[str] | None = None,
        with_vectors: bool = False,
        batch_size: int | None = None,
    ) -> Iterator[Record]:
        # The live collection is held one page at a time, never across a yield: a consumer
        # that publishes a generation mid-scroll must not deadlock against itself.
        with self._using_live() as live:
            pages = live.scroll_pages(
                filter=filter, fields=fields, with_vectors=with_vectors, batch_size=batch_size
            )
        while True:
            with self._using_live() as current:
                if current is not live:
                    raise StoreError(
                        f"the live collection changed from {live.name} to {current.name} "
                        "during a scroll; start the scroll again"
                    )
                page = next(pages, None)
            if page is None:
                return
            yield from page

    def search(
        self,
        vector: np.ndarray,
        *,
        top_k: int,
        offset: int = 0,
        filter: SearchFilter | None = None,
        exact: bool = False,
    ) -> list[Hit]:
        with self._using_live() as live:
            return live.search(vector, top_k=top_k, offset=offset, filter=filter, exact=exact)

    def set_payloads(self, updates: Mapping[str, Mapping[str, Any]]) -> int:
        with self._using_live() as live:
            return live.set_payloads(updates)

    def search_batch(
        self,
        vectors: np.ndarray,
        *,
        top_k: int,
        filters: Sequence[SearchFilter | None],
        score_threshold: float | None = None,
        fields: Sequence[str] = DISPLAY_FIELDS,
    ) -> list[list[Hit]]:
        with self._using_live() as live:
            return live.search_batch(
                vectors,
                top_k=top_k,
                filters=filters,
                score_threshold=score_threshold,
                fields=fields,
            )

    def facets(
        self, fields: Sequence[str], *, filter: SearchFilter | None = None, limit: int
    ) -> dict[str, list[FacetValue]]:
        with self._using_live() as live:
            return live.facets(fields, filter=filter, limit=limit)

    def write_labels_version(self, version: str) -> None:
        """Record in the live collection's metadata which vocabulary labelled it last."""
        with self._using_live() as live:
            live.backend.write_meta({"labels_version": version})

    def describe(self) -> CollectionInfo:
        with self._using_live() as live:
            return live.describe()

    def last_write(self) -> WriteMarker:
        with self._using_live() as live:
            return live.last_write()

    def __enter__(self) -> StoreBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
