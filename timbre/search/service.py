"""The SearchService: a query becomes a vector, the vector goes to the right engine, hits come back.

Query vectors: text through the text tower (recent ones cached, concurrent ones batched), audio
through the audio tower (loaded on first need), an indexed item's stored vector by id, and
hybrids ``normalise(alpha * text + (1 - alpha) * audio)``. Which engine answers is
:mod:`timbre.search.routing`'s rule.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from timbre.audio.decode import decode_bytes, decode_file
from timbre.errors import InvalidRequestError, NotFoundError
from timbre.search import palette, routing, steer
from timbre.search.batcher import TextBatcher
from timbre.search.fitting import FitQuery, pool_size, rank_hits
from timbre.search.library import Library
from timbre.search.palette import BatchQuery
from timbre.search.routing import Routed, RoutingPolicy
from timbre.store import Hit, SearchFilter, point_id


@dataclass(frozen=True)
class AudioRef:
    """A reference sound: an indexed item, a file on the server, or uploaded bytes."""

    id: str | None = None
    path: str | None = None
    upload: bytes | None = None
    upload_name: str = "upload"

    def __post_init__(self) -> None:
        given = sum(x is not None for x in (self.id, self.path, self.upload))
        if given != 1:
            raise InvalidRequestError("give exactly one reference: an id, a path or an upload")

    def describe(self) -> dict[str, Any]:
        """The reference as a result's ``query`` shows it (never the uploaded bytes)."""
        if self.id is not None:
            return {"id": self.id}
        if self.path is not None:
            return {"path": self.path}
        return {"upload": self.upload_name}


@dataclass
class SearchResult:
    """Hits of one query, which engine answered, and how long it took. ``total``: how many
    samples the query could return (None: not counted). A palette slot also carries ``notes``
    on its filters and, when it came back empty, why (``empty``). ``fit``: the project the
    hits were fitted to (None: no context given)."""

    engine: str
    took_ms: float
    hits: list[Hit]
    query: dict[str, Any] = field(default_factory=dict)
    total: int | None = None
    notes: list[str] = field(default_factory=list)
    empty: dict[str, Any] | None = None
    fit: FitQuery | None = None


class TextCache:
    """A small thread-safe LRU of query text -> vector."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: str, value: np.ndarray) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)


class SearchService:
    """Answers every kind of query over a :class:`Library`. ``routing`` says when filtered
    queries go to the snapshot (None: always to Qdrant); ``model_lock`` serialises model work,
    so two requests never fight over the cores; ``on_embed(kind, seconds)`` feeds metrics."""

    def __init__(
        self,
        library: Library,
        *,
        routing: RoutingPolicy | None = None,
        model_lock: threading.Lock | None = None,
        on_embed: Callable[[str, float], None] | None = None,
    ) -> None:
        self.library = library
        self.routing = routing
        self.model_lock = model_lock or threading.Lock()
        self.on_embed = on_embed
        self.text_cache = TextCache(library.limits.text_cache_size)
        self.text_batcher = TextBatcher(self._embed_texts, library.limits.text_batch_max)
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
        embedder = self.library.text.get()
        return self._embed("text", lambda: embedder.embed(texts))

    def text_vectors(self, queries: Sequence[str]) -> list[np.ndarray]:
        """Vectors of several queries, the uncached ones in one tower batch."""
        out: list[np.ndarray | None] = [self.text_cache.get(q) for q in queries]
        missing = sorted({q for q, v in zip(queries, out, strict=True) if v is None})
        if missing:
            if any(not q.strip() for q in missing):
                raise InvalidRequestError("a query text is empty")
            vectors = self._embed_texts(missing)
            fresh = dict(zip(missing, vectors, strict=True))
            for q, v in fresh.items():
                self.text_cache.put(q, v)
            out = [v if v is not None else fresh[q] for q, v in zip(queries, out, strict=True)]
        return [v for v in out if v is not None]

    def audio_vector(self, ref: AudioRef) -> np.ndarray:
        library, limits = self.library, self.library.limits
        if ref.id is not None:
            vector = library.stored_vector(ref.id)
            if vector is None:
                raise NotFoundError(f"no indexed item {ref.id}")
            return vector
        if ref.path is not None:
            path = library.allowed_path(ref.path)
            # A file already in the index needs no model run: use its stored vector.
            with path.open("rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
            known = library.stored_vector(point_id(digest))
            if known is not None:
                return known
            embedder = library.audio.get()
            samples = decode_file(
                path,
                sample_rate=int(embedder.sample_rate),
                max_duration_s=limits.max_duration_s,
                max_file_bytes=limits.max_file_bytes,
                resampler=embedder.resampler,
            ).samples
        else:
            assert ref.upload is not None
            if len(ref.upload) > limits.max_upload_bytes:
                raise InvalidRequestError("upload too large")  # the API checks this first (413)
            embedder = library.audio.get()
            samples = decode_bytes(
                ref.upload,
                ref.upload_name,
                sample_rate=int(embedder.sample_rate),
                max_duration_s=limits.max_upload_duration_s,
                resampler=embedder.resampler,
            ).samples
        return self._embed("audio", lambda: embedder.embed([samples])[0])

    # -- queries ----------------------------------------------------------------------------

    def route(
        self,
        vector: np.ndarray,
        *,
        top_k: int,
        offset: int = 0,
        filter: SearchFilter | None = None,
        exclude: frozenset[str] = frozenset(),
    ) -> Routed:
        """Hits for a query vector, the engine that found them and the filter's count.
        ``exclude`` drops those ids, asking as many more of every engine alike."""
        routed = routing.search(
            self.library.snapshots.current,
            self.library.store,
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
        query: dict[str, Any],
        top_k: int,
        offset: int,
        filter: SearchFilter | None,
        *,
        fit: FitQuery | None = None,
    ) -> SearchResult:
        """Compute the query vector, route it, and time both; with ``fit``, each hit is fitted
        to its project (and ranked by :func:`_fitted_page` when it asks)."""
        started = time.perf_counter()
        vector = make_vector()
        if fit is not None and fit.reranks:
            routed, fitting = self._fitted_page(
                vector, fit, top_k=top_k, offset=offset, filter=filter
            )
        else:
            routed, fitting = self.route(vector, top_k=top_k, offset=offset, filter=filter), None
        took_ms = (time.perf_counter() - started) * 1e3
        total = routed.matching if routed.matching is not None else self.library.matching(filter)
        if fit is not None:
            query = {**query, "context": fit.describe()}
            total = total if fitting is None else fitting
        return SearchResult(routed.engine, took_ms, routed.hits, query, total=total, fit=fit)

    def _fitted_page(
        self,
        vector: np.ndarray,
        fit: FitQuery,
        *,
        top_k: int,
        offset: int,
        filter: SearchFilter | None,
    ) -> tuple[Routed, int | None]:
        """The page of hits ranked by fit over a pool of candidates (:func:`pool_size`), and,
        when only fitting hits are kept, how many the pool holds (the query's total)."""
        routed = self.route(vector, top_k=pool_size(offset, top_k), filter=filter)
        ranked = rank_hits(routed.hits, fit)
        fitting = len(ranked) if fit.only_fitting else None
        return routed._replace(hits=ranked[offset : offset + top_k]), fitting

    def search_text(
        self,
        query: str,
        *,
        top_k: int,
        offset: int = 0,
        filter: SearchFilter | None = None,
        avoid: Sequence[str] = (),
        fit: FitQuery | None = None,
    ) -> SearchResult:
        """``-word`` tokens of ``query`` and ``avoid`` steer away (:mod:`.steer`)."""
        parsed = steer.parse_text(query, avoid)
        return self._timed(
            lambda: steer.text_vector(self, parsed),
            parsed.describe(),
            top_k,
            offset,
            filter,
            fit=fit,
        )

    def search_audio(
        self,
        ref: AudioRef,
        *,
        top_k: int,
        offset: int = 0,
        filter: SearchFilter | None = None,
        fit: FitQuery | None = None,
    ) -> SearchResult:
        return self._timed(
            lambda: self.audio_vector(ref), ref.describe(), top_k, offset, filter, fit=fit
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
        avoid: Sequence[str] = (),
        fit: FitQuery | None = None,
    ) -> SearchResult:
        """``alpha`` = weight of the text (1 = pure text, 0 = pure audio), steered away from
        its ``-word`` tokens and ``avoid`` first."""
        if not 0.0 <= alpha <= 1.0:
            raise InvalidRequestError("alpha must lie in [0, 1]")
        parsed = steer.parse_text(query, avoid)

        def mixed() -> np.ndarray:
            text = steer.text_vector(self, parsed)
            vector = alpha * text + (1.0 - alpha) * self.audio_vector(ref)
            norm = float(np.linalg.norm(vector))
            if norm < 1e-12:
                raise InvalidRequestError("the text and audio references cancel out (zero vector)")
            return (vector / norm).astype(np.float32)

        info = {**parsed.describe(), "alpha": alpha, **ref.describe()}
        return self._timed(mixed, info, top_k, offset, filter, fit=fit)

    def search_batch(
        self,
        queries: Sequence[BatchQuery],
        *,
        distinct: bool = False,
        fit: FitQuery | None = None,
    ) -> list[SearchResult]:
        """Several text queries, embedded together, each slot by :mod:`palette`'s rules; with
        ``distinct`` no sample fills two slots; with ``fit``, each slot's hits are fitted to its
        project and ranked over a pool (fitting samples first when it sorts by fit)."""
        started = time.perf_counter()
        parsed = [steer.parse_text(q.query, q.avoid) for q in queries]
        vectors = steer.text_vectors(self, parsed)
        taken: set[str] = set()
        results = []
        for q, text, vector in zip(queries, parsed, vectors, strict=True):
            plan = palette.plan(self.library, q)
            exclude = frozenset(taken) if distinct else frozenset()
            ranks = fit is not None and fit.reranks
            want = pool_size(q.offset, q.top_k) if ranks else q.offset + q.top_k
            found = [
                self.route(vector, top_k=want, filter=f, exclude=exclude) for f in plan.filters
            ]
            if fit is not None and ranks:
                pool = rank_hits(palette.merge([r.hits for r in found], 0, want), fit)
                hits = pool[q.offset : q.offset + q.top_k]
            else:
                hits = palette.merge([r.hits for r in found], q.offset, q.top_k)
            taken.update(h.id for h in hits)
            took_ms = (time.perf_counter() - started) * 1e3
            notes = [*plan.notes, *([palette.project_note(fit)] if fit is not None else [])]
            result = SearchResult(
                found[0].engine, took_ms, hits, text.describe(), notes=notes, fit=fit
            )
            if not hits and q.offset == 0:
                result.empty = palette.why_empty(self.library, plan)
            results.append(result)
        return results

    def recommend(
        self,
        steering: steer.Steering,
        *,
        top_k: int,
        offset: int = 0,
        filter: SearchFilter | None = None,
        fit: FitQuery | None = None,
    ) -> SearchResult:
        """More like the positive examples, less like the negative ones (:mod:`.steer`)."""
        started = time.perf_counter()
        found = steer.recommend(self, steering, top_k=top_k, offset=offset, filter=filter, fit=fit)
        took_ms = (time.perf_counter() - started) * 1e3
        return SearchResult(
            found.engine, took_ms, found.hits, found.query, total=found.total, fit=fit
        )

    def stats(self) -> dict[str, Any]:
        """``/v1/stats``: the library's figures and the query side's caches."""
        return {
            **self.library.stats(),
            "text_cache": {
                "size": self.library.limits.text_cache_size,
                "hits": self.text_cache.hits,
                "misses": self.text_cache.misses,
            },
            "text_batches": {
                "max": self.text_batcher.max_batch,
                "calls": self.text_batcher.calls,
                "queries": self.text_batcher.queries,
            },
        }
