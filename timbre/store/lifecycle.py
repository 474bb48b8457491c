"""The store facade: the live collection and its generations, the same policy in both modes.

A *generation* is a versioned collection ``<base>-<key>-<n>`` (:mod:`timbre.store.schema`);
exactly one is live, named by the server alias ``<base>`` or the embedded ``LIVE`` pointer. A
model, pipeline or schema change builds a new generation beside the live one (resuming an
unfinished one for the same key), and :meth:`Generation.publish` swaps it in atomically, so
searches never see a half-built collection; generations beyond ``qdrant.keep_generations`` are
then deleted. Each engine supplies the primitives as the abstract methods of
:class:`VectorStore`; reads and writes go to the collection :meth:`VectorStore.live` hands out.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Literal, Self

from timbre.embedding.info import ModelInfo, family_of_key
from timbre.errors import ModelMismatchError, SchemaMismatchError, StoreError, TimbreError
from timbre.settings import QdrantSettings
from timbre.store.backend import Backend
from timbre.store.collection import Collection
from timbre.store.records import CollectionInfo, Record, new_meta, utc_now
from timbre.store.schema import CollectionSchema, generation_name, parse_generation_name

log = logging.getLogger(__name__)

REINDEX_HINT = (
    "Run `timbre ingest` on the library to re-index: it builds a collection for the "
    "configured models beside the live one and publishes it when complete (searches keep "
    "answering from the old one meanwhile); or configure the models that built the live "
    "collection."
)


class Generation(Collection):
    """A new versioned collection being built; searches cannot see it until :meth:`publish`."""

    backend: Backend

    def __init__(self, store: VectorStore, backend: Backend) -> None:
        super().__init__(backend, store.settings)
        self._store = store

    def publish(self) -> None:
        """Swap this collection in as the live one (atomic), then prune old generations."""
        self._store._publish(self)

    def abandon(self) -> None:
        """Delete this collection (it must not be live)."""
        self._store._abandon(self)


class VectorStore(ABC):
    """The live collection of a Timbre deployment and its generations, embedded or on a server."""

    mode: Literal["embedded", "server"]

    def __init__(
        self, *, info: ModelInfo, schema: CollectionSchema, settings: QdrantSettings
    ) -> None:
        self.info = info  # the loaded models, which the live collection must match
        self.schema = schema
        self.settings = settings
        self._key = schema.collection_key(info)
        self._generations: dict[str, Generation] = {}

    @abstractmethod
    def live(self) -> Collection:
        """The live collection: reads and writes follow a swap to a new generation."""

    # -- engine primitives ------------------------------------------------------------------

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
    def _swap_live(self, generation: Generation) -> None:
        """Point the alias or pointer at ``generation`` in one atomic step."""

    @abstractmethod
    def _drop(self, name: str) -> None:
        """Delete a collection that is not live."""

    @abstractmethod
    def flush(self) -> None:
        """Persist pending writes (embedded: segments; server: nothing to do)."""

    @abstractmethod
    def optimize(self) -> bool:
        """Compact what bulk writes left behind, blocking; True if anything changed (a server
        optimises in the background by itself)."""

    @abstractmethod
    def close(self) -> None:
        """Release the collections, the client and, embedded, the ownership lock."""

    # -- opening ----------------------------------------------------------------------------

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
        live = self.live()
        problem = self._mismatch(live.describe())
        if problem is None:
            # An older collection lacks derived fields: derive them in place, no re-index.
            live.backfill_derived()
            return
        if not reindex:
            raise problem
        log.warning("%s (opened for re-indexing)", problem)

    def _mismatch(self, info: CollectionInfo) -> TimbreError | None:
        where = f"The live collection {info.name!r}"
        if info.dim != self.info.dim or info.distance != self.schema.distance:
            return SchemaMismatchError(
                f"{where} holds {info.dim}-d {info.distance} vectors, but the loaded models "
                f"produce {self.info.dim}-d vectors and the schema asks for "
                f"{self.schema.distance}. {REINDEX_HINT}"
            )
        theirs = family_of_key(info.audio_key)
        if theirs != self.info.family:
            return ModelMismatchError(
                f"{where} holds vectors of the {theirs} model family, but models.family is "
                f"{self.info.family}: vectors of two families cannot be compared. Set "
                f"models.family to {theirs}, or re-index with {self.info.family}. {REINDEX_HINT}"
            )
        if info.audio_key != self.info.audio_key():
            return ModelMismatchError(
                f"{where} was built by {info.audio_key or 'unknown models'}, but the loaded "
                f"models are {self.info.audio_key()}. {REINDEX_HINT}"
            )
        if info.schema_version != self.schema.schema_version:
            return SchemaMismatchError(
                f"{where} has schema version {info.schema_version}, qdrant/collection.yaml is "
                f"version {self.schema.schema_version}. {REINDEX_HINT}"
            )
        return None

    @property
    def needs_reindex(self) -> bool:
        """True when the live collection was built by other models or another schema."""
        return self._mismatch(self.live().describe()) is not None

    # -- generations ------------------------------------------------------------------------

    def begin_generation(self) -> Generation:
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
                self.settings.collection, self._key, highest + 1, self.info.family
            )
            log.info("creating collection %s", name)
            meta = new_meta(self.info.as_dict(), self.info.audio_key(), self.schema.schema_version)
            backend = self._create_backend(name, meta)
        generation = Generation(self, backend)
        self._generations[name] = generation
        return generation

    def _publish(self, generation: Generation) -> None:
        if generation.name == self._live_name():
            return
        generation.backend.write_meta({"published_at": utc_now()})
        self._swap_live(generation)
        self._generations.pop(generation.name, None)
        log.info("collection %s is live", generation.name)
        self._prune()

    def _abandon(self, generation: Generation) -> None:
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

    def generations(self) -> list[tuple[str, dict[str, Any], bool]]:
        """``(name, metadata, is_live)`` of every kept collection (``timbre eval`` compares
        families)."""
        live = self._live_name()
        return [
            (name, self._meta_of(name), name == live)
            for name in self._collection_names()
            if parse_generation_name(self.settings.collection, name) is not None
        ]

    def read_generation(self, name: str, fields: Sequence[str]) -> list[Record]:
        """Every point of the collection ``name`` (live or kept), with its vector."""
        if name == self._live_name():
            return list(self.live().scroll(fields=fields, with_vectors=True))
        backend = self._open_backend(name)
        try:
            return list(Collection(backend, self.settings).scroll(fields=fields, with_vectors=True))
        finally:
            getattr(backend, "close", lambda: None)()  # an embedded shard holds files open

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
