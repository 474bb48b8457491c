"""One SearchService: a query becomes a vector, the vector goes to the right engine, hits come back.

Routing: a query without a filter is answered by the FAISS exact snapshot (same ids and
scores as Qdrant, without a round trip); a filtered query by Qdrant with its payload indexes.
When Qdrant is unreachable, unfiltered queries keep answering from the snapshot and filtered
ones fail with :class:`UnavailableError`. A newly published snapshot is picked up by
:class:`SnapshotHolder` without a restart and swapped in with one reference assignment, so no
request ever sees a half-loaded one.

Query vectors: text through the CLaMP3 text tower (recent ones cached), audio through MERT and
the audio tower (loaded on first need), an indexed item's stored vector by id, and hybrids
``normalise(alpha * text + (1 - alpha) * audio)``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from timbre.audio.decode import decode_bytes, decode_file
from timbre.embedding.info import ModelInfo
from timbre.errors import (
    ForbiddenPathError,
    InvalidRequestError,
    ModelMismatchError,
    NotFoundError,
    SnapshotError,
    StoreError,
    TimbreError,
    UnavailableError,
)
from timbre.store import Hit, SearchFilter, VectorStore, point_id
from timbre.store.snapshot import (
    Snapshot,
    current_snapshot_name,
    export_snapshot,
    freshness,
    load_snapshot,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


class Lazy(Generic[T]):
    """A heavy object loaded once, on first use or in the background, behind a lock.

    A failed load is remembered and reported; the next :meth:`get` tries again.
    """

    def __init__(self, name: str, loader: Callable[[], T]) -> None:
        self.name = name
        self._loader = loader
        self._value: T | None = None
        self._lock = threading.Lock()
        self.error: str | None = None
        self.load_s: float | None = None

    @property
    def ready(self) -> bool:
        return self._value is not None

    def peek(self) -> T | None:
        """The loaded object, or None (never starts a load)."""
        return self._value

    def get(self) -> T:
        if self._value is not None:
            return self._value
        with self._lock:
            if self._value is None:
                started = time.perf_counter()
                try:
                    self._value = self._loader()
                except TimbreError as exc:
                    self.error = str(exc)
                    raise UnavailableError(f"{self.name} could not be loaded: {exc}") from exc
                self.error = None
                self.load_s = time.perf_counter() - started
                log.info("%s loaded in %.1f s", self.name, self.load_s)
        return self._value

    def start(self) -> threading.Thread:
        """Load in a background thread (errors are kept in :attr:`error`)."""

        def run() -> None:
            try:
                self.get()
            except UnavailableError as exc:
                log.error("%s", exc)

        thread = threading.Thread(target=run, name=f"load-{self.name}", daemon=True)
        thread.start()
        return thread


class SnapshotHolder:
    """The FAISS snapshot in use, swapped when a new one is published.

    A snapshot built by other models is refused (the one in use stays); a corrupt one likewise.
    """

    def __init__(
        self,
        directory: Path,
        info: ModelInfo,
        *,
        mmap_min_bytes: int,
        verify_checksums: bool,
    ) -> None:
        self.directory = directory
        self.info = info
        self.mmap_min_bytes = mmap_min_bytes
        self.verify_checksums = verify_checksums
        self._current: Snapshot | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.error: str | None = None
        self.swaps = 0

    @property
    def current(self) -> Snapshot | None:
        return self._current

    def refresh(self) -> bool:
        """Load the published snapshot if it is not the one in use; True if it was swapped."""
        with self._lock:
            name = current_snapshot_name(self.directory)
            if name is None or (self._current is not None and self._current.name == name):
                return False
            try:
                fresh = load_snapshot(
                    self.directory,
                    self.info,
                    mmap_min_bytes=self.mmap_min_bytes,
                    verify_checksums=self.verify_checksums,
                    name=name,
                )
            except (SnapshotError, ModelMismatchError) as exc:
                if self.error != str(exc):
                    log.error("snapshot %s refused: %s", name, exc)
                self.error = str(exc)
                return False
            # One reference assignment: requests hold whichever snapshot they started with; the
            # old one is released when the last of them finishes.
            self._current = fresh
            self.error = None
            self.swaps += 1
            log.info("serving snapshot %s (%d vectors)", fresh.name, len(fresh))
            return True

    def watch(self, interval_s: float) -> threading.Thread:
        """Poll for newly published snapshots every ``interval_s`` seconds until :meth:`stop`."""

        def run() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.refresh()
                except Exception:  # keep watching whatever one attempt raised
                    log.exception("snapshot refresh failed")

        thread = threading.Thread(target=run, name="snapshot-watch", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()


class StoreHandle:
    """The live Qdrant collection, reconnected on demand when it was unreachable.

    Embedded stores are opened once at start; a server store that cannot be reached is tried
    again at most every ``retry_s`` seconds, and meanwhile callers get :class:`UnavailableError`.
    """

    def __init__(self, opener: Callable[[], VectorStore], *, retry_s: float = 5.0) -> None:
        self._opener = opener
        self._store: VectorStore | None = None
        self._lock = threading.Lock()
        self._retry_s = retry_s
        self._next_try = 0.0
        self.error: str | None = None

    def get(self) -> VectorStore:
        if self._store is not None:
            return self._store
        with self._lock:
            if self._store is None:
                if time.monotonic() < self._next_try:
                    raise UnavailableError(f"the vector store is unreachable: {self.error}")
                try:
                    self._store = self._opener()
                    self.error = None
                except StoreError as exc:
                    self.error = str(exc)
                    self._next_try = time.monotonic() + self._retry_s
                    raise UnavailableError(f"the vector store is unreachable: {exc}") from exc
        return self._store

    @property
    def connected(self) -> bool:
        return self._store is not None

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


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


@dataclass
class SearchResult:
    """Hits of one query, which engine answered, and how long it took."""

    engine: str
    took_ms: float
    hits: list[Hit]
    query: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchQuery:
    """One slot of a batch search (e.g. "kick" at 124 BPM, techno)."""

    query: str
    top_k: int
    filter: SearchFilter | None = None
    offset: int = 0


@dataclass(frozen=True)
class ServiceLimits:
    """Limits on inputs, from the ``api`` and ``audio`` settings."""

    library_roots: tuple[Path, ...]
    max_upload_bytes: int
    max_upload_duration_s: float
    max_duration_s: float
    max_file_bytes: int
    text_cache_size: int
    snapshot_keep: int


class _LRU:
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


def _normalize(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    if norm < 1e-12:
        raise InvalidRequestError("the text and audio references cancel out (zero vector)")
    return (vector / norm).astype(np.float32)


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
    ) -> None:
        self.info = info
        self.text = text
        self.audio = audio
        self.store = store
        self.snapshots = snapshots
        self.limits = limits
        self.model_lock = model_lock or threading.Lock()
        self.on_embed = on_embed
        self._cache = _LRU(limits.text_cache_size)
        self._roots = tuple(r.expanduser().resolve() for r in limits.library_roots)
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
        cached = self._cache.get(query)
        if cached is not None:
            return cached
        embedder = self.text.get()
        vector = self._embed("text", lambda: embedder.embed([query])[0])
        self._cache.put(query, vector)
        return vector

    def text_vectors(self, queries: Sequence[str]) -> list[np.ndarray]:
        """Vectors of several queries, the uncached ones in one tower batch."""
        out: list[np.ndarray | None] = [self._cache.get(q) for q in queries]
        missing = sorted({q for q, v in zip(queries, out, strict=True) if v is None})
        if missing:
            if any(not q.strip() for q in missing):
                raise InvalidRequestError("a query text is empty")
            embedder = self.text.get()
            vectors = self._embed("text", lambda: embedder.embed(missing))
            fresh = dict(zip(missing, vectors, strict=True))
            for q, v in fresh.items():
                self._cache.put(q, v)
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
            ).samples
        embedder = self.audio.get()
        return self._embed("audio", lambda: embedder.embed([samples])[0])

    def _audio_rate(self) -> int:
        return int(self.audio.get().sample_rate)

    def stored_vector(self, item_id: str) -> np.ndarray | None:
        _check_id(item_id)
        snapshot = self.snapshots.current
        if snapshot is not None:
            vector = snapshot.vector(item_id)
            if vector is not None:
                return vector
        try:
            return self.store.get().vector(item_id)
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
        if not self._roots:
            raise ForbiddenPathError("no library roots are configured, so no path is accepted")
        try:
            real = Path(path).expanduser().resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise ForbiddenPathError(f"path {path!r} is not inside a library root") from exc
        if not any(real == root or real.is_relative_to(root) for root in self._roots):
            raise ForbiddenPathError(f"path {path!r} is not inside a library root")
        return real

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
        """Hits for a query vector and the engine that found them (``faiss`` or ``qdrant``)."""
        extra = len(exclude)
        snapshot = self.snapshots.current
        if filter is None or filter.is_empty:
            if snapshot is not None:
                hits = snapshot.search(vector, top_k + extra, offset)
                return [h for h in hits if h.id not in exclude][:top_k], "faiss"
            store = self.store.get()  # no snapshot yet: Qdrant answers
            hits = store.search(vector, top_k=top_k + extra, offset=offset, exact=True)
            return [h for h in hits if h.id not in exclude][:top_k], "qdrant"
        try:
            store = self.store.get()
            hits = store.search(
                vector, top_k=top_k + extra, offset=offset, filter=filter, exact=True
            )
        except StoreError as exc:
            raise UnavailableError(f"filtered search needs Qdrant, which failed: {exc}") from exc
        return [h for h in hits if h.id not in exclude][:top_k], "qdrant"

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
        hits, engine = self.route(make_vector(), top_k=top_k, offset=offset, filter=filter)
        return SearchResult(engine, (time.perf_counter() - started) * 1e3, hits, query)

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
            query=_ref_info(ref),
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
            return _normalize(
                alpha * self.text_vector(query) + (1.0 - alpha) * self.audio_vector(ref)
            )

        info = {"text": query, "alpha": alpha, **_ref_info(ref)}
        return self._timed(mixed, top_k=top_k, offset=offset, filter=filter, query=info)

    def search_batch(
        self, queries: Sequence[BatchQuery], *, distinct: bool = False
    ) -> list[SearchResult]:
        """Several text queries, embedded together; with ``distinct`` no sample fills two slots."""
        started = time.perf_counter()
        vectors = self.text_vectors([q.query for q in queries])
        taken: set[str] = set()
        results = []
        for q, vector in zip(queries, vectors, strict=True):
            hits, engine = self.route(
                vector,
                top_k=q.top_k,
                offset=q.offset,
                filter=q.filter,
                exclude=frozenset(taken) if distinct else frozenset(),
            )
            taken.update(h.id for h in hits)
            results.append(
                SearchResult(engine, (time.perf_counter() - started) * 1e3, hits, {"text": q.query})
            )
        return results

    # -- items ------------------------------------------------------------------------------

    def item(self, item_id: str) -> dict[str, Any]:
        _check_id(item_id)
        snapshot = self.snapshots.current
        payload = snapshot.payload(item_id) if snapshot is not None else None
        if payload is None:
            try:
                records = self.store.get().retrieve([item_id])
            except UnavailableError:
                records = []
            if not records:
                raise NotFoundError(f"no indexed item {item_id}")
            payload = records[0].payload
        return payload

    def item_file(self, item_id: str) -> Path:
        """The file of an indexed item that may be streamed: it must exist, and lie inside the
        library roots when roots are configured."""
        payload = self.item(item_id)
        for candidate in payload.get("paths") or [payload.get("path")]:
            if not candidate:
                continue
            real = Path(candidate).resolve()
            if self._roots and not any(real.is_relative_to(r) for r in self._roots):
                continue
            if real.is_file():
                return real
        raise NotFoundError(f"item {item_id} has no readable file inside the library roots")

    def export_snapshot(self) -> dict[str, Any]:
        """Export the live collection into a new snapshot, publish it and serve it now."""
        store = self.store.get()
        manifest = export_snapshot(
            store, self.snapshots.directory, source_mode=store.mode, keep=self.limits.snapshot_keep
        )
        self.snapshots.refresh()
        return {"name": manifest.name, "count": manifest.count, "created_at": manifest.created_at}

    # -- state ------------------------------------------------------------------------------

    def readiness(self) -> dict[str, Any]:
        snapshot = self.snapshots.current
        checks = {
            "text_model": self.text.ready,
            "store": self.store.connected,
            "snapshot": snapshot is not None,
        }
        reasons = []
        if not self.text.ready:
            reasons.append(
                f"text model {'failed: ' + self.text.error if self.text.error else 'loading'}"
            )
        if not self.store.connected:
            reasons.append(
                f"store unreachable: {self.store.error}" if self.store.error else "store not open"
            )
        if snapshot is None:
            reasons.append(self.snapshots.error or "no snapshot published yet (run an ingest)")
        return {"ready": all(checks.values()), "checks": checks, "reasons": reasons}

    def stats(self) -> dict[str, Any]:
        snapshot = self.snapshots.current
        out: dict[str, Any] = {
            "models": self.info.as_dict(),
            "pipeline_version": self.info.pipeline_version,
            "random_weights": self.info.random_weights,
            "audio_model_loaded": self.audio.ready,
            # The precision each loaded side runs in (fp32 unless a reduced one passed its
            # agreement check at load); None = not loaded yet.
            "precision": {
                "text": getattr(self.text.peek(), "running", None),
                "audio": getattr(self.audio.peek(), "running", None),
            },
            "text_cache": {
                "size": self.limits.text_cache_size,
                "hits": self._cache.hits,
                "misses": self._cache.misses,
            },
            "snapshot": None,
            "store": None,
        }
        if snapshot is not None:
            out["snapshot"] = {
                "name": snapshot.name,
                "count": len(snapshot),
                "created_at": snapshot.manifest.created_at,
                "age_s": _age_s(snapshot.manifest.created_at),
                "mmapped": snapshot.mmapped,
            }
        try:
            store = self.store.get()
            out["store"] = {"mode": store.mode, "collection": store.name, "count": store.count()}
            if snapshot is not None:
                out["snapshot"]["freshness"] = freshness(snapshot.manifest, store).as_dict()
        except (UnavailableError, StoreError) as exc:
            out["store"] = {"error": str(exc)}
        return out


def _check_id(item_id: str) -> None:
    try:
        uuid.UUID(item_id)
    except ValueError:
        raise NotFoundError(f"no indexed item {item_id!r} (ids are UUIDs)") from None


def _ref_info(ref: AudioRef) -> dict[str, Any]:
    if ref.id is not None:
        return {"id": ref.id}
    if ref.path is not None:
        return {"path": ref.path}
    return {"upload": ref.upload_name}


def _age_s(iso: str) -> float | None:
    from datetime import UTC, datetime

    try:
        created = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return round((datetime.now(UTC) - created).total_seconds(), 1)
