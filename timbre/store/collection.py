"""One Qdrant collection: the values it reads and writes, and its behaviour over either engine.

:class:`Collection` holds the behaviour (batching, checks, derived fields, the write marker)
once, over a small :class:`Backend` of primitives per engine; the helpers both backends share
live here too, so that the two cannot drift apart.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, get_args

import numpy as np

from timbre.errors import InvalidPointError, StoreError
from timbre.fsutil import now_iso
from timbre.store.facets import FacetValue, facet_values
from timbre.store.filters import Condition, MatchAny, Range, SearchFilter
from timbre.store.payload import (
    DERIVED_FIELDS,
    DERIVED_VERSION,
    DIRS_FIELD,
    DISPLAY_FIELDS,
    NORMALISED_FIELDS,
    ancestor_dirs,
    normalised_companions,
    point_id,
    with_derived,
)
from timbre.store.schema import IndexType

if TYPE_CHECKING:
    from timbre.settings import QdrantSettings

log = logging.getLogger(__name__)

C = TypeVar("C")
F = TypeVar("F")


@dataclass(frozen=True)
class Point:
    """One point to write: id (``point_id`` of the payload's ``content_sha256``), float32
    L2-normalised vector, payload (:func:`~timbre.store.payload.build_payload`)."""

    id: str
    vector: np.ndarray
    payload: Mapping[str, Any]

    @classmethod
    def of(cls, vector: np.ndarray, payload: Mapping[str, Any]) -> Point:
        """A point whose id derives from its payload's ``content_sha256``."""
        return cls(point_id(payload["content_sha256"]), vector, payload)


@dataclass(frozen=True)
class Record:
    """A stored point as read back (vector only when asked for)."""

    id: str
    payload: dict[str, Any]
    vector: np.ndarray | None = None


@dataclass(frozen=True)
class Hit:
    """One search result: point id, similarity (cosine = inner product) and display payload."""

    id: str
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True)
class WriteMarker:
    """How far a collection's writes have gone (for snapshot freshness): ``seq`` grows by one
    per write operation and never decreases; ``at`` is the ISO time of the last, or None."""

    seq: int
    at: str | None


@dataclass(frozen=True)
class CollectionInfo:
    """What a collection is and who built it: its versioned name (never the alias), vector
    size and distance, the models (``ModelInfo.as_dict()``, ``audio_key()``), schema version,
    creation and publication times (ISO UTC; None while being built) and write marker."""

    name: str
    dim: int
    distance: str
    model: dict[str, Any]
    audio_key: dict[str, Any]
    schema_version: int
    created_at: str
    published_at: str | None
    last_write: WriteMarker = field(default_factory=lambda: WriteMarker(0, None))


@dataclass(frozen=True)
class Rewritten:
    """What :meth:`Collection.rewrite_payloads` went through: points read, and points whose
    payload was (or, in a dry run, would have been) rewritten."""

    points: int
    changed: int


# -- metadata ---------------------------------------------------------------------------------

META_KEYS = (
    "model",
    "audio_key",
    "schema_version",
    "created_at",
    "published_at",
    "write_seq",
    "last_write_at",
    "derived_version",
    "labels_version",
)
"""Collection metadata Timbre keeps (Qdrant collection metadata / the embedded JSON file)."""


def utc_now() -> str:
    """The time now, ISO 8601 UTC (how every time in the metadata is written)."""
    return now_iso("auto")


def new_meta(
    info_dict: Mapping[str, Any], audio_key: Mapping[str, Any], schema_version: int
) -> dict[str, Any]:
    """Metadata of a collection created now."""
    return {
        "model": dict(info_dict),
        "audio_key": dict(audio_key),
        "schema_version": schema_version,
        "created_at": utc_now(),
        "published_at": None,
        "write_seq": 0,
        "last_write_at": None,
        # Written through upsert, so every payload carries the current derivation.
        "derived_version": DERIVED_VERSION,
        "labels_version": None,
    }


def write_marker(meta: Mapping[str, Any]) -> WriteMarker:
    """The write marker recorded in a collection's metadata."""
    return WriteMarker(int(meta.get("write_seq") or 0), meta.get("last_write_at"))


# -- checks -----------------------------------------------------------------------------------

NORM_TOLERANCE = 1e-3
"""How far from 1 a vector's L2 norm may be: float32 normalisation lands within ~1e-7, so
anything further is an un-normalised vector, which would score differently in FAISS."""


def check_vector(vector: np.ndarray, dim: int, what: str) -> np.ndarray:
    """``vector`` as float32 ``[dim]``; InvalidPointError unless finite and L2-normalised."""
    v = np.asarray(vector, dtype=np.float32)
    if v.shape != (dim,):
        raise InvalidPointError(f"{what}: vector shape {v.shape}, expected ({dim},)")
    if not np.all(np.isfinite(v)):
        raise InvalidPointError(f"{what}: vector has NaN or infinite values")
    norm = float(np.linalg.norm(v))
    if abs(norm - 1.0) > NORM_TOLERANCE:
        raise InvalidPointError(f"{what}: vector norm is {norm:.4f}; vectors must be L2-normalised")
    return v


def checked_point(point: Point, dim: int) -> Point:
    """``point`` with a checked vector and its derived payload fields, ready to write;
    InvalidPointError if its id is not ``point_id(content_sha256)`` or it has no paths."""
    sha = point.payload.get("content_sha256")
    if not isinstance(sha, str) or point_id(sha) != point.id:
        raise InvalidPointError(
            f"point {point.id}: id must be point_id(payload['content_sha256']) (got {sha!r})"
        )
    if not point.payload.get("paths"):
        raise InvalidPointError(f"point {point.id}: payload has no paths")
    vector = check_vector(point.vector, dim, f"point {point.id}")
    return Point(point.id, vector, with_derived(point.payload))


# -- shared by both backends ------------------------------------------------------------------

INDEX_KINDS: tuple[str, ...] = get_args(IndexType)
"""The payload index kinds ``qdrant/collection.yaml`` may name."""


def index_types(enum: Any, spelling: Callable[[str], str]) -> dict[str, Any]:
    """Each of :data:`INDEX_KINDS` as the member of an engine's payload schema type, spelt
    by ``spelling`` (``str.capitalize`` for Qdrant Edge, ``str.upper`` for qdrant-client)."""
    return {kind: getattr(enum, spelling(kind)) for kind in INDEX_KINDS}


def translate_filter(
    conditions: Sequence[Condition],
    *,
    match_any: Callable[[str, list[str]], C],
    in_range: Callable[[str, Range], C],
    filter_type: Callable[..., F],
) -> F | None:
    """The shared filter model as ``filter_type(must=...)`` of one engine (every condition must
    hold); None when there is no condition."""
    if not conditions:
        return None
    return filter_type(
        must=[
            match_any(c.field, list(c.values)) if isinstance(c, MatchAny) else in_range(c.field, c)
            for c in conditions
        ]
    )


def with_payload(fields: Sequence[str] | None) -> list[str] | Literal[True]:
    """The payload selector of a read: the fields named, or the whole payload."""
    return list(fields) if fields is not None else True


def record_of(point: Any) -> Record:
    """A retrieved or scrolled point (either engine's type) as a :class:`Record`."""
    vector = None if point.vector is None else np.asarray(point.vector, dtype=np.float32)
    return Record(str(point.id), point.payload or {}, vector)


def hits_of(points: Sequence[Any]) -> list[Hit]:
    """Scored points (either engine's type) as :class:`Hit` values, in the engine's order."""
    return [Hit(str(p.id), float(p.score), p.payload or {}) for p in points]


def page_of(records: Sequence[Any], next_offset: Any) -> tuple[list[Record], str | None]:
    """One scroll answer: its records and the offset of the next page (None after the last)."""
    return [record_of(r) for r in records], None if next_offset is None else str(next_offset)


def facet_counts(hits: Sequence[Any]) -> list[tuple[Any, int]]:
    """A facet answer's hits (either engine's type) as ``(value, points)`` pairs."""
    return [(h.value, int(h.count)) for h in hits]


# -- the collection ---------------------------------------------------------------------------


class Backend(Protocol):
    """The primitives each engine supplies on one collection, in its own client API
    (:class:`~timbre.store.edge.EdgeBackend`, :class:`~timbre.store.server.ServerBackend`)."""

    dim: int
    write_seq: int | None  # the write marker, counted by :func:`_mark_write`
    marker_lock: threading.Lock

    @property
    def name(self) -> str:
        """The collection's real (versioned) name."""
        ...

    def vector_params(self) -> tuple[int, str]: ...
    def ensure_space(self, batch_bytes: int) -> None: ...
    def upsert(self, points: Sequence[Point]) -> None: ...
    def delete(self, ids: Sequence[str]) -> None: ...
    def set_payload(self, point_id: str, payload: Mapping[str, Any]) -> None: ...
    def set_payloads(self, updates: Sequence[tuple[str, Mapping[str, Any]]]) -> None: ...
    def retrieve(self, ids: Sequence[str], with_vectors: bool) -> list[Record]: ...
    def count(self, conditions: Sequence[Condition]) -> int: ...
    def facet(
        self, key: str, conditions: Sequence[Condition], limit: int
    ) -> list[tuple[Any, int]]: ...
    def read_meta(self) -> dict[str, Any]: ...
    def write_meta(self, updates: Mapping[str, Any]) -> None: ...

    def scroll_page(
        self,
        *,
        offset: str | None,
        limit: int,
        conditions: Sequence[Condition],
        fields: Sequence[str] | None,
        with_vectors: bool,
    ) -> tuple[list[Record], str | None]: ...

    def search(
        self,
        vectors: np.ndarray,
        *,
        limit: int,
        offset: int,
        conditions: Sequence[Sequence[Condition]],
        score_threshold: float | None,
        fields: Sequence[str],
        exact: bool,
    ) -> list[list[Hit]]:
        """One nearest-neighbour query per row of ``vectors``, each under its own conditions,
        run as one batch."""
        ...


_PAYLOAD_BYTES = 16384
"""What one point's payload may take on disk (log, segment, payload indexes): a generous bound
for the disk check (a payload is 1-3 kB of JSON). A vector takes four times its float32 size."""

_BACKFILL_READ = ("path", "paths", *NORMALISED_FIELDS)


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
                _mark_write(backend)
                backend.upsert(checked)
            total += len(batch)
        return total

    def delete(self, ids: Sequence[str]) -> None:
        """Delete points by id; unknown ids are ignored."""
        if ids:
            with self._use() as backend:
                backend.ensure_space(len(ids) * _PAYLOAD_BYTES)
                _mark_write(backend)
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
            _mark_write(backend)
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
                _mark_write(backend)
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
        """Derive the fields an older collection lacks (``derived_version`` below
        :data:`~timbre.store.payload.DERIVED_VERSION`) from its stored payloads, in place.

        Nothing is re-embedded. Safe to interrupt: the version is recorded last and
        re-deriving is idempotent. Returns how many points were rewritten (0 when current).
        """
        with self._use() as backend:
            if int(backend.read_meta().get("derived_version") or 1) >= DERIVED_VERSION:
                return 0
        started = time.perf_counter()
        done = 0
        for page in self.scroll_pages(fields=list(_BACKFILL_READ)):
            updates = []
            for record in page:
                derived = with_derived(record.payload)
                updates.append(
                    (record.id, {k: v for k, v in derived.items() if k not in _BACKFILL_READ})
                )
            with self._use() as backend:
                _mark_write(backend)
                backend.set_payloads(updates)
            done += len(page)
        with self._use() as backend:
            backend.write_meta({"derived_version": DERIVED_VERSION})
        log.info(
            "collection %s: derived fields of %d points brought to version %d in %.1f s",
            self.name,
            done,
            DERIVED_VERSION,
            time.perf_counter() - started,
        )
        return done

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


def _mark_write(backend: Backend) -> None:
    """Advance the write marker *before* the write it stands for: a crash between the two makes
    a snapshot look stale, never a stale one fresh. One process writes a collection at a time,
    so the sequence is read once and then counted on the backend."""
    with backend.marker_lock:
        if backend.write_seq is None:
            backend.write_seq = int(backend.read_meta().get("write_seq") or 0)
        backend.write_seq += 1
        backend.write_meta({"write_seq": backend.write_seq, "last_write_at": utc_now()})
