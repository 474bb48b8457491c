"""One Qdrant collection's behaviour over either engine.

:class:`Collection` holds the behaviour (batching, checks, derived fields, the write marker)
once, over a small :class:`~timbre.store.backend.Backend` of primitives per engine; the values
it reads and writes and the helpers both backends share are in :mod:`timbre.store.records`.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from timbre.errors import InvalidPointError, StoreError
from timbre.store.backend import Backend, mark_write
from timbre.store.backfill import backfill_derived
from timbre.store.examples import Examples
from timbre.store.facets import FacetValue, facet_values
from timbre.store.filters import Condition, SearchFilter
from timbre.store.payload import (
    DERIVED_FIELDS,
    DIRS_FIELD,
    DISPLAY_FIELDS,
    ancestor_dirs,
    normalised_companions,
)
from timbre.store.records import (
    CollectionInfo,
    Hit,
    Point,
    Record,
    Rewritten,
    WriteMarker,
    check_vector,
    checked_point,
    write_marker,
)

if TYPE_CHECKING:
    from timbre.settings import QdrantSettings


_PAYLOAD_BYTES = 16384
"""What one point's payload may take on disk (log, segment, payload indexes): a generous bound
for the disk check (a payload is 1-3 kB of JSON). A vector takes four times its float32 size."""


def _conditions(filter: SearchFilter | None) -> list[Condition]:
    return filter.conditions() if filter else []


class Collection:
    """Reads and writes on one collection (the live one, or a generation being built).

    ``backend`` is None for the embedded live collection, whose :meth:`_use` finds the current one.
    """

    def __init__(self, backend: Backend | None, settings: QdrantSettings) -> None:
        self.backend = backend
        self._upsert_batch = settings.upsert_batch
        self._scroll_batch = settings.scroll_batch

    @contextlib.contextmanager
    def _use(self) -> Iterator[Backend]:
        """The backend, held for one operation (the embedded live collection holds it against
        a swap of the live collection meanwhile)."""
        assert self.backend is not None
        yield self.backend

    @property
    def name(self) -> str:
        """The versioned collection name."""
        with self._use() as backend:
            return backend.name

    # -- writes -----------------------------------------------------------------------------

    def upsert(self, points: Iterable[Point]) -> int:
        """Insert or replace points with their derived fields, ``upsert_batch`` per request;
        returns how many. On an invalid point (:func:`checked_point`) the batches before it
        are written (upserts are idempotent: re-run)."""
        total = 0
        iterator = iter(points)
        while batch := list(itertools.islice(iterator, self._upsert_batch)):
            with self._use() as backend:
                checked = [checked_point(p, backend.dim) for p in batch]
                backend.ensure_space(len(checked) * (4 * backend.dim * 4 + _PAYLOAD_BYTES))
                mark_write(backend)
                backend.upsert(checked)
            total += len(batch)
        return total

    def delete(self, ids: Sequence[str]) -> None:
        """Delete points by id; unknown ids are ignored."""
        if ids:
            with self._use() as backend:
                backend.ensure_space(len(ids) * _PAYLOAD_BYTES)
                mark_write(backend)
                backend.delete(list(ids))

    def set_paths(self, point_id: str, paths: Sequence[str]) -> bool:
        """Replace ``paths`` (``path`` = the first, ``dirs`` follow) of a stored point; False
        if no such point is stored (nothing is written)."""
        unique = list(dict.fromkeys(paths))
        if not unique:
            raise InvalidPointError(f"point {point_id}: at least one path is needed")
        with self._use() as backend:
            if not backend.retrieve([point_id], False):
                return False
            backend.ensure_space(_PAYLOAD_BYTES)
            mark_write(backend)
            backend.set_payload(
                point_id, {"path": unique[0], "paths": unique, DIRS_FIELD: ancestor_dirs(unique)}
            )
        return True

    def set_payloads(self, updates: Mapping[str, Mapping[str, Any]]) -> int:
        """Merge partial payloads into stored points (``id -> fields``), ``upsert_batch`` per
        request, deriving the companions anew; returns how many. Derived fields and paths
        cannot be set here (:meth:`set_paths`). Read the ids from the store first: a server
        ignores unknown ids, the embedded shard refuses them."""
        items = list(updates.items())
        for pid, fields in items:
            bad = set(fields) & {*DERIVED_FIELDS, "path", "paths"}
            if bad:
                raise InvalidPointError(f"point {pid}: {sorted(bad)} cannot be set directly")
        for start in range(0, len(items), self._upsert_batch):
            batch = [
                (pid, {**fields, **normalised_companions(fields)})
                for pid, fields in items[start : start + self._upsert_batch]
            ]
            with self._use() as backend:
                backend.ensure_space(len(batch) * _PAYLOAD_BYTES)
                mark_write(backend)
                backend.set_payloads(batch)
        return len(items)

    def rewrite_payloads(
        self,
        revise: Callable[[list[Record]], Mapping[str, Mapping[str, Any]]],
        *,
        fields: Sequence[str],
        batch_size: int,
        with_vectors: bool = False,
        dry_run: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> Rewritten:
        """Give every point the fields ``revise`` works out for it (relabel, reanalyse).

        ``revise`` gets one page of ``batch_size`` records (with payload ``fields``) and returns
        the fields to merge into those that change; ``dry_run`` writes nothing.
        """
        points = changed = 0
        records = self.scroll(fields=list(fields), with_vectors=with_vectors, batch_size=batch_size)
        while page := list(itertools.islice(records, batch_size)):
            updates = revise(page)
            if updates and not dry_run:
                self.set_payloads(updates)
            points += len(page)
            changed += len(updates)
            if progress is not None:
                progress(points)
        return Rewritten(points, changed)

    def write_labels_version(self, version: str) -> None:
        """Record which vocabulary and text model labelled this collection last."""
        with self._use() as backend:
            backend.write_meta({"labels_version": version})

    def backfill_derived(self) -> int:
        """Derive the fields an older collection lacks, in place; returns how many points were
        rewritten (0 when current). See :func:`timbre.store.backfill.backfill_derived`."""
        return backfill_derived(self)

    # -- reads ------------------------------------------------------------------------------

    def retrieve(self, ids: Sequence[str], *, with_vectors: bool = False) -> list[Record]:
        """Stored points among ``ids`` in the order asked (unknown ids are skipped), with
        their full payloads."""
        if not ids:
            return []
        with self._use() as backend:
            found = {r.id: r for r in backend.retrieve(list(ids), with_vectors)}
        return [found[i] for i in ids if i in found]

    def vector(self, point_id: str) -> np.ndarray | None:
        """The stored vector of a point (for audio-by-id queries), None if unknown."""
        with self._use() as backend:
            records = backend.retrieve([point_id], True)
        return records[0].vector if records else None

    def count(self, filter: SearchFilter | None = None) -> int:
        """Exact number of points matching ``filter`` (all if None)."""
        with self._use() as backend:
            return backend.count(_conditions(filter))

    def scroll(
        self,
        *,
        filter: SearchFilter | None = None,
        fields: Sequence[str] | None = None,
        with_vectors: bool = False,
        batch_size: int | None = None,
    ) -> Iterator[Record]:
        """Every point matching ``filter`` in id order, with payload ``fields`` (all if None)."""
        for page in self.scroll_pages(
            filter=filter, fields=fields, with_vectors=with_vectors, batch_size=batch_size
        ):
            yield from page

    def scroll_pages(
        self,
        *,
        filter: SearchFilter | None = None,
        fields: Sequence[str] | None = None,
        with_vectors: bool = False,
        batch_size: int | None = None,
    ) -> Iterator[list[Record]]:
        """Like :meth:`scroll`, one page (one request) at a time. The collection is held per
        page, never across a yield, so a consumer may publish a generation mid-scroll; a swap
        between two pages raises StoreError."""
        conditions = _conditions(filter)
        offset: str | None = None
        first: Backend | None = None
        while True:
            with self._use() as backend:
                if first is None:
                    first = backend
                elif backend is not first:
                    raise StoreError(
                        f"the live collection changed from {first.name} to {backend.name} "
                        "during a scroll; start the scroll again"
                    )
                page, offset = backend.scroll_page(
                    offset=offset,
                    limit=batch_size or self._scroll_batch,
                    conditions=conditions,
                    fields=fields,
                    with_vectors=with_vectors,
                )
            if page:
                yield page
            if offset is None:
                return

    def search(
        self,
        vector: np.ndarray,
        *,
        top_k: int,
        offset: int = 0,
        filter: SearchFilter | None = None,
        exact: bool = False,
    ) -> list[Hit]:
        """Nearest points by cosine (= inner product), best first, after ``offset`` of them;
        ``exact`` asks a server for an exhaustive search (the embedded shard is always exact)."""
        if top_k < 1 or offset < 0:
            raise ValueError(f"top_k must be >= 1 and offset >= 0 (got {top_k}, {offset})")
        with self._use() as backend:
            [hits] = backend.search(
                check_vector(vector, backend.dim, "query")[None],
                limit=top_k,
                offset=offset,
                conditions=[_conditions(filter)],
                score_threshold=None,
                fields=DISPLAY_FIELDS,
                exact=exact,
            )
        return hits

    def recommend(
        self,
        examples: Examples,
        *,
        top_k: int,
        offset: int = 0,
        filter: SearchFilter | None = None,
        exact: bool = False,
    ) -> list[Hit]:
        """Nearest points to the examples' average vector (:mod:`timbre.store.examples`), as
        :meth:`search` ranks them; the examples are vectors, so none is left out here."""
        if top_k < 1 or offset < 0:
            raise ValueError(f"top_k must be >= 1 and offset >= 0 (got {top_k}, {offset})")
        with self._use() as backend:
            check_vector(examples.vector(), backend.dim, "recommend query")
            return backend.recommend(
                examples,
                limit=top_k,
                offset=offset,
                conditions=_conditions(filter),
                fields=DISPLAY_FIELDS,
                exact=exact,
            )

    def search_batch(
        self,
        vectors: np.ndarray,
        *,
        top_k: int,
        filters: Sequence[SearchFilter | None],
        score_threshold: float | None = None,
        fields: Sequence[str] = DISPLAY_FIELDS,
    ) -> list[list[Hit]]:
        """Exact nearest points of each row of ``vectors`` (float32 ``[n, dim]``, normalised)
        under its own filter (None = unfiltered), best first, in one batched request, with
        at least ``score_threshold`` cosine and payload ``fields`` (near-duplicates)."""
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1 (got {top_k})")
        if len(filters) != len(vectors):
            raise ValueError(f"{len(vectors)} vectors but {len(filters)} filters")
        if not len(vectors):
            return []
        with self._use() as backend:
            return backend.search(
                np.stack([check_vector(v, backend.dim, "query") for v in vectors]),
                limit=top_k,
                offset=0,
                conditions=[_conditions(f) for f in filters],
                score_threshold=score_threshold,
                fields=list(fields),
                exact=True,
            )

    def facets(
        self, fields: Sequence[str], *, filter: SearchFilter | None = None, limit: int
    ) -> dict[str, list[FacetValue]]:
        """The ``limit`` most frequent values of each field (of
        :data:`~timbre.store.facets.FACET_FIELDS`) among points matching ``filter``."""
        conditions = _conditions(filter)
        with self._use() as backend:
            return {f: facet_values(backend, f, conditions, limit) for f in fields}

    def describe(self) -> CollectionInfo:
        """Name, vector parameters, models and write marker of the collection."""
        with self._use() as backend:
            meta = backend.read_meta()
            dim, distance = backend.vector_params()
            name = backend.name
        return CollectionInfo(
            name=name,
            dim=dim,
            distance=distance,
            model=meta.get("model") or {},
            audio_key=meta.get("audio_key") or {},
            schema_version=int(meta.get("schema_version") or 0),
            created_at=meta.get("created_at") or "",
            published_at=meta.get("published_at"),
            last_write=write_marker(meta),
        )

    def last_write(self) -> WriteMarker:
        """The write marker, read fresh from the store."""
        with self._use() as backend:
            return write_marker(backend.read_meta())
