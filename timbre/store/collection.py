"""The public collection behaviour over an adapter's primitives: batching, ``dirs``, the marker.

Each adapter supplies a :class:`~timbre.store.backend.Backend`, the handful of primitive
operations on one collection in its own API; :class:`CollectionView` builds the public
:class:`~timbre.store.interface.Collection` behaviour on top of it, once. Points and query
vectors are checked by :mod:`timbre.store.checks`; the metadata is :mod:`timbre.store.meta`.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from timbre.errors import InvalidPointError
from timbre.store.backend import Backend
from timbre.store.checks import check_vector, checked_point
from timbre.store.facets import FacetValue, facet_values
from timbre.store.filters import SearchFilter
from timbre.store.interface import CollectionInfo, Hit, Point, Record, WriteMarker
from timbre.store.meta import META_KEYS, new_meta, utc_now, write_marker
from timbre.store.payload import (
    DERIVED_FIELDS,
    DIRS_FIELD,
    DISPLAY_FIELDS,
    ancestor_dirs,
    normalised_companions,
)

# Imported from here by modules written before the split (timbre.store.snapshot among them).
__all__ = [
    "META_KEYS",
    "Backend",
    "CollectionView",
    "check_vector",
    "new_meta",
    "utc_now",
]


_PAYLOAD_BYTES = 16384
"""What one point's payload may take on disk, written to the log, the segment and the payload
indexes: a generous bound for the disk check (a payload is 1-3 kB of JSON). A vector takes
four times its float32 size on the same count (log encoding, segment, headroom)."""


class CollectionView:
    """The :class:`~timbre.store.interface.Collection` behaviour over one backend.

    Args:
        backend: the adapter's primitive operations on this collection.
        dim: the collection's vector size.
        upsert_batch: points per write request.
        scroll_batch: points per scroll page.
    """

    def __init__(self, backend: Backend, *, dim: int, upsert_batch: int, scroll_batch: int) -> None:
        self.backend = backend
        self.dim = dim
        self._upsert_batch = upsert_batch
        self._scroll_batch = scroll_batch
        self._marker_lock = threading.Lock()
        self._seq: int | None = None

    @property
    def name(self) -> str:
        return self.backend.name

    # -- writes -----------------------------------------------------------------------------

    def upsert(self, points: Iterable[Point]) -> int:
        """Insert or replace points, ``upsert_batch`` per request; returns how many.

        Each point's payload gets its derived fields (``dirs`` and the normalised companions).

        Raises:
            InvalidPointError: a vector is not float32 ``[dim]``, finite and L2-normalised,
                an id is not ``point_id(content_sha256)``, or a payload has no paths. The
                batches before the bad point are written (upserts are idempotent: re-run).
            StoreError: the store failed.
        """
        total = 0
        iterator = iter(points)
        while batch := list(itertools.islice(iterator, self._upsert_batch)):
            checked = [checked_point(p, self.dim) for p in batch]
            self.backend.ensure_space(len(checked) * (4 * self.dim * 4 + _PAYLOAD_BYTES))
            self.mark_write()
            self.backend.upsert(checked)
            total += len(batch)
        return total

    def delete(self, ids: Sequence[str]) -> None:
        """Delete points by id; unknown ids are ignored."""
        if ids:
            self.backend.ensure_space(len(ids) * _PAYLOAD_BYTES)
            self.mark_write()
            self.backend.delete(list(ids))

    def set_paths(self, point_id: str, paths: Sequence[str]) -> bool:
        """Replace ``paths`` (``path`` = the first, ``dirs`` follow) of a stored point.

        Returns:
            False if no such point is stored (nothing is written).
        """
        unique = list(dict.fromkeys(paths))
        if not unique:
            raise InvalidPointError(f"point {point_id}: at least one path is needed")
        if not self.backend.retrieve([point_id], False):
            return False
        self.backend.ensure_space(_PAYLOAD_BYTES)
        self.mark_write()
        self.backend.set_payload(
            point_id, {"path": unique[0], "paths": unique, DIRS_FIELD: ancestor_dirs(unique)}
        )
        return True

    def set_payloads(self, updates: Mapping[str, Mapping[str, Any]]) -> int:
        """Merge partial payloads into stored points (``id -> fields``), ``upsert_batch`` per
        request; the companions of the fields given are derived anew. Returns how many.

        Unknown ids are the caller's to avoid: Qdrant ignores them on a server and the
        embedded shard refuses them, so read the ids from the store first (relabel does).

        Raises:
            InvalidPointError: an update writes a derived field or the paths (use
                :meth:`set_paths`).
        """
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
            self.backend.ensure_space(len(batch) * _PAYLOAD_BYTES)
            self.mark_write()
            self.backend.set_payloads(batch)
        return len(items)

    def mark_write(self) -> None:
        """Advance the write marker, *before* the write it stands for.

        If the process dies between the two, the marker is one ahead of the data and a snapshot
        looks stale when it is not: harmless. The other order could make a stale snapshot look
        fresh. One process writes a collection at a time (the embedded owner, or the ingest
        job on a server), so the sequence is read once and then counted here.
        """
        with self._marker_lock:
            if self._seq is None:
                self._seq = int(self.backend.read_meta().get("write_seq") or 0)
            self._seq += 1
            self.backend.write_meta({"write_seq": self._seq, "last_write_at": utc_now()})

    # -- reads ------------------------------------------------------------------------------

    def retrieve(self, ids: Sequence[str], *, with_vectors: bool = False) -> list[Record]:
        """Stored points among ``ids`` in the order asked, with their full payloads."""
        if not ids:
            return []
        found = {r.id: r for r in self.backend.retrieve(list(ids), with_vectors)}
        return [found[i] for i in ids if i in found]

    def vector(self, point_id: str) -> np.ndarray | None:
        """The stored vector of a point (for audio-by-id queries), None if unknown."""
        records = self.backend.retrieve([point_id], True)
        return records[0].vector if records else None

    def count(self, filter: SearchFilter | None = None) -> int:
        """Exact number of points matching ``filter`` (all if None)."""
        return self.backend.count(filter.conditions() if filter else [])

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
        """Like :meth:`scroll`, one page (one request) at a time."""
        conditions = filter.conditions() if filter else []
        offset: str | None = None
        while True:
            page, offset = self.backend.scroll_page(
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
        """Nearest points by cosine (= inner product), best first, after ``offset`` of them.

        Args:
            vector: float32 ``[dim]``, L2-normalised.
            top_k: hits to return.
            offset: hits to skip (paging).
            filter: only points matching it.
            exact: exhaustive search on a server (the embedded shard is always exact).

        Raises:
            InvalidPointError: the query vector is malformed or not normalised.
        """
        if top_k < 1 or offset < 0:
            raise ValueError(f"top_k must be >= 1 and offset >= 0 (got {top_k}, {offset})")
        query = check_vector(vector, self.dim, "query")
        conditions = filter.conditions() if filter else []
        return self.backend.search(
            query,
            limit=top_k,
            offset=offset,
            conditions=conditions,
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
        """Exact nearest points of each row of ``vectors`` under its own filter, best first.

        One batched request (the engine shares one pass over its segments), for jobs that
        query the library with its own vectors (near-duplicates).

        Args:
            vectors: float32 ``[n, dim]``, rows L2-normalised.
            top_k: hits per query.
            filters: one per row (None = unfiltered).
            score_threshold: only hits with at least this cosine.
            fields: payload fields of the hits.
        """
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1 (got {top_k})")
        if len(filters) != len(vectors):
            raise ValueError(f"{len(vectors)} vectors but {len(filters)} filters")
        if not len(vectors):
            return []
        rows = np.stack([check_vector(v, self.dim, "query") for v in vectors])
        return self.backend.search_batch(
            rows,
            limit=top_k,
            conditions=[f.conditions() if f else [] for f in filters],
            score_threshold=score_threshold,
            fields=list(fields),
        )

    def facets(
        self, fields: Sequence[str], *, filter: SearchFilter | None = None, limit: int
    ) -> dict[str, list[FacetValue]]:
        """The ``limit`` most frequent values of each field (of
        :data:`~timbre.store.facets.FACET_FIELDS`) among points matching ``filter``."""
        conditions = filter.conditions() if filter else []
        return {f: facet_values(self.backend, f, conditions, limit) for f in fields}

    def describe(self) -> CollectionInfo:
        """Name, vector parameters, models and write marker of the collection."""
        meta = self.backend.read_meta()
        dim, distance = self.backend.vector_params()
        return CollectionInfo(
            name=self.backend.name,
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
        return write_marker(self.backend.read_meta())
