"""The ingest job: library folders in, indexed and filterable points out.

Stages, each timed::

    discover -> hash -> lookup -> decode + analyse (worker processes)
             -> mert (or the feature cache) -> tower -> upsert -> [prune] -> [snapshot]

Safe to re-run and to kill at any moment: a point's id is its content hash, so upserts are
idempotent; content already in the store is never embedded again (a new path for it is added
to its payload); MERT features computed before a crash come back from the feature cache.
Decoding runs in worker processes that feed one model loop through a bounded window of
in-flight files, and batches are flushed by audio duration, so memory stays bounded on a
library of any size.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from ingest.cache import FeatureCache, HashCache, sha256_of
from ingest.discover import Found, discover
from ingest.metadata import AudioFacts, MetadataRules, describe
from ingest.progress import Progress
from ingest.report import Counts, Failure, FailureLog, StageClock, exit_code, summary
from ingest.tags import read_tags
from timbre.audio.analysis import Heard, analyse
from timbre.audio.decode import decode_file
from timbre.embedding.info import ModelInfo
from timbre.errors import AudioError
from timbre.labels import Labeller
from timbre.store import Collection, Point, build_payload, point_id

log = logging.getLogger("timbre.ingest")

Profile = Literal["sequential", "parallel"]


class Embedder(Protocol):
    """The audio side of the models (``timbre.embedding.embedder.AudioEmbedder``)."""

    sample_rate: int

    def features(self, waveforms: Sequence[np.ndarray]) -> list[np.ndarray]: ...
    def embed_features(self, features: Sequence[np.ndarray]) -> np.ndarray: ...


@dataclass(frozen=True)
class JobOptions:
    """How to run one job (see ``timbre ingest --help``)."""

    roots: tuple[Path, ...]
    profile: Profile = "parallel"
    workers: int = 1
    batch_files: int = 16
    batch_audio_s: float = 240.0
    shard: tuple[int, int] | None = None
    prune: bool = False
    dry_run: bool = False
    interactive: bool | None = None
    progress_interval_s: float = 10.0


@dataclass(frozen=True)
class Limits:
    """Audio limits and the model rate, passed to decoding workers."""

    sample_rate: int
    max_duration_s: float
    max_file_bytes: int


@dataclass
class JobResult:
    summary: dict[str, Any]
    exit_code: int


def in_shard(sha256: str, shard: tuple[int, int] | None) -> bool:
    """Deterministic split by content: shard ``i`` of ``n`` owns hashes with value % n == i."""
    if shard is None:
        return True
    index, total = shard
    return int(sha256[:16], 16) % total == index


# -- work done in decoding processes (module-level so it pickles) ----------------------------


@dataclass
class Prepared:
    """One file, ready for the model loop (or failed)."""

    sha256: str
    paths: list[str]
    payload: dict[str, Any] = field(default_factory=dict)
    samples: np.ndarray | None = None
    audio_s: float = 0.0
    failure: Failure | None = None


def prepare(
    sha256: str,
    found: Sequence[tuple[str, str]],
    limits: Limits,
    rules: MetadataRules,
    keep_samples: bool,
) -> Prepared:
    """Decode, analyse and describe one content.

    The audio is decoded even when its MERT features are cached: the tempo, key and
    waveform peaks are computed from it here (decoding is ~2% of the work), so a point
    built from cached features carries the same facts as one embedded afresh.

    Args:
        sha256: the content hash.
        found: ``(path, root)`` pairs where this content lies; the first one is described.
        limits: decoding limits.
        rules: metadata vocabularies.
        keep_samples: False when MERT features are cached: the samples are not sent back.
    """
    path, root = Path(found[0][0]), Path(found[0][1])
    paths = sorted(p for p, _ in found)
    stage = "decode"
    try:
        audio = decode_file(
            path,
            sample_rate=limits.sample_rate,
            max_duration_s=limits.max_duration_s,
            max_file_bytes=limits.max_file_bytes,
        )
        facts = AudioFacts(audio.duration_s, audio.source_sample_rate, audio.channels, audio.format)
        stage = "metadata"
        listen = audio_listener(str(path), audio.samples, audio.sample_rate, audio.duration_s)
        payload = describe(path, root, facts, read_tags(path), rules, listen=listen)
    except AudioError as exc:
        return Prepared(sha256, paths, failure=Failure(str(path), stage, exc.code, exc.reason))
    except Exception as exc:  # a bad file must never stop the job
        return Prepared(
            sha256, paths, failure=Failure(str(path), stage, type(exc).__name__, str(exc))
        )
    samples = audio.samples if keep_samples else None
    return Prepared(sha256, paths, payload=payload, samples=samples, audio_s=facts.duration_s)


def audio_listener(
    path: str, samples: np.ndarray, sample_rate: int, duration_s: float
) -> Callable[[bool, bool], Heard | None]:
    """The audio analysis of decoded samples, for :func:`describe`; never fails the file."""

    def listen(tempo: bool, key: bool) -> Heard | None:
        try:
            return analyse(samples, sample_rate, duration_s, tempo=tempo, key=key)
        except Exception:  # an analysis fault leaves the facts unknown, never loses the file
            log.exception("audio analysis failed: %s", path)
            return None

    return listen


def _hash(path: str) -> tuple[str, str | None, str | None]:
    try:
        return path, sha256_of(Path(path)), None
    except OSError as exc:
        return path, None, f"{type(exc).__name__}: {exc}"


# -- the job ---------------------------------------------------------------------------------


class IngestJob:
    """One run over the library roots; build it with everything it needs, then :meth:`run`."""

    def __init__(
        self,
        options: JobOptions,
        *,
        embedder: Embedder,
        store: Collection,
        rules: MetadataRules,
        limits: Limits,
        model: ModelInfo,
        hash_cache: HashCache | None,
        feature_cache: FeatureCache | None,
        failures: FailureLog,
        listener: Callable[[Counts], None] | None = None,
        labeller: Labeller | None = None,
    ) -> None:
        self.o = options
        self.labeller = labeller
        self.embedder = embedder
        self.store = store
        self.rules = rules
        self.limits = limits
        self.model = model
        self.hash_cache = hash_cache
        self.feature_cache = feature_cache
        self.failures = failures
        self.listener = listener
        self.counts = Counts()
        self.clock = StageClock()
        self._pool: ProcessPoolExecutor | None = None

    # entry point

    def run(self) -> JobResult:
        started = time.perf_counter()
        extra: dict[str, Any] = {
            "dry_run": self.o.dry_run,
            "shard": self.o.shard,
            "profile": self.o.profile,
        }
        if self.o.profile == "parallel" and self.o.workers > 0:
            # spawn, not fork: the parent holds torch's thread pools, which do not survive fork.
            self._pool = ProcessPoolExecutor(
                self.o.workers, mp_context=multiprocessing.get_context("spawn")
            )
        try:
            with self.clock.stage("discover"):
                found = list(discover(self.o.roots))
            self.counts.discovered = len(found)
            with self.clock.stage("hash"):
                by_sha = self._hash_all(found)
            with self.clock.stage("lookup"):
                todo = self._lookup(by_sha)
            self.counts.to_embed = len(todo)
            self._notify()
            if not self.o.dry_run:
                self._embed_all(todo)
            if self.o.prune:
                with self.clock.stage("prune"):
                    self._prune(by_sha)
        finally:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
            self.failures.close()
        result = summary(
            self.counts, self.clock, self.failures, time.perf_counter() - started, extra
        )
        return JobResult(result, exit_code(self.counts))

    # stages

    def _hash_all(self, found: Sequence[Found]) -> dict[str, list[tuple[str, str]]]:
        """Content hash -> [(path, root)] for files in this shard."""
        by_sha: dict[str, list[tuple[str, str]]] = {}
        roots = {str(f.path): str(f.root) for f in found}
        for path, sha, error in self._hashes([f.path for f in found]):
            if sha is None:
                self._fail(Failure(path, "hash", "unreadable", error or "cannot read"))
                continue
            if not in_shard(sha, self.o.shard):
                self.counts.other_shards += 1
                continue
            by_sha.setdefault(sha, []).append((path, roots[path]))
        return by_sha

    def _hashes(self, paths: Sequence[Path]) -> Iterator[tuple[str, str | None, str | None]]:
        misses = []
        for path in paths:
            if self.hash_cache is None:
                misses.append(str(path))
                continue
            try:
                yield str(path), self.hash_cache.sha256(path), None
            except OSError as exc:
                yield str(path), None, f"{type(exc).__name__}: {exc}"
        if self._pool is not None and len(misses) > 1:
            yield from self._pool.map(_hash, misses, chunksize=16)
        else:
            yield from map(_hash, misses)

    def _lookup(
        self, by_sha: dict[str, list[tuple[str, str]]]
    ) -> list[tuple[str, list[tuple[str, str]]]]:
        """Split contents into already indexed (maybe at new paths) and to embed."""
        todo = []
        shas = sorted(by_sha)
        for start in range(0, len(shas), 256):
            chunk = shas[start : start + 256]
            ids = [point_id(s) for s in chunk]
            known = {r.id: r.payload for r in self.store.retrieve(ids)}
            for sha, pid in zip(chunk, ids, strict=True):
                payload = known.get(pid)
                if payload is None:
                    todo.append((sha, by_sha[sha]))
                    continue
                self.counts.already_indexed += 1
                stored = list(payload.get("paths") or [])
                merged = sorted(set(stored) | {p for p, _ in by_sha[sha]})
                if merged != sorted(stored):
                    self.counts.paths_added += len(merged) - len(stored)
                    if not self.o.dry_run:
                        self.store.set_paths(pid, merged)
        return todo

    def _embed_all(self, todo: Sequence[tuple[str, list[tuple[str, str]]]]) -> None:
        with Progress(
            len(todo), interactive=self.o.interactive, interval_s=self.o.progress_interval_s
        ) as progress:
            batch: list[Prepared] = []
            batch_audio = 0.0
            for item in self._prepared(todo):
                if item.failure is not None:
                    self._fail(item.failure)
                    progress.advance(failed=1)
                    self._notify()
                    continue
                batch.append(item)
                batch_audio += item.audio_s
                limit = 1 if self.o.profile == "sequential" else self.o.batch_files
                if len(batch) >= limit or batch_audio >= self.o.batch_audio_s:
                    self._embed_batch(batch, progress)
                    batch, batch_audio = [], 0.0
            if batch:
                self._embed_batch(batch, progress)

    def _prepared(self, todo: Sequence[tuple[str, list[tuple[str, str]]]]) -> Iterator[Prepared]:
        """Decode in workers with a bounded number in flight; results in completion order."""

        def args(sha: str, found: list[tuple[str, str]]) -> tuple[Any, ...]:
            cached = self.feature_cache is not None and self.feature_cache.has(sha)
            return (sha, found, self.limits, self.rules, not cached)

        if self._pool is None:
            for sha, found in todo:
                with self.clock.stage("decode"):
                    item = prepare(*args(sha, found))
                yield item
            return
        window = max(2, 2 * self.o.batch_files)
        pending: set[Future[Prepared]] = set()
        queue = iter(todo)
        exhausted = False
        while pending or not exhausted:
            while not exhausted and len(pending) < window:
                nxt = next(queue, None)
                if nxt is None:
                    exhausted = True
                    break
                pending.add(self._pool.submit(prepare, *args(*nxt)))
            if not pending:
                break
            with self.clock.stage("decode_wait"):
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()

    def _embed_batch(self, batch: list[Prepared], progress: Progress) -> None:
        features: list[np.ndarray | None] = [None] * len(batch)
        if self.feature_cache is not None:
            for i, item in enumerate(batch):
                if item.samples is None:
                    features[i] = self.feature_cache.get(item.sha256)
                    self.counts.features_cached += features[i] is not None
        missing = [i for i, f in enumerate(features) if f is None]
        for i in missing:
            if batch[i].samples is None:  # the cache entry vanished since lookup: decode now
                batch[i].samples = self._decode(batch[i].paths[0])
        if missing:
            with self.clock.stage("mert"):
                computed = self.embedder.features([batch[i].samples for i in missing])  # type: ignore[misc]
            for i, feats in zip(missing, computed, strict=True):
                features[i] = feats
                if self.feature_cache is not None:
                    self.feature_cache.put(batch[i].sha256, feats)
        with self.clock.stage("tower"):
            vectors = self.embedder.embed_features(features)  # type: ignore[arg-type]
        now = datetime.now(UTC)
        payloads = [
            build_payload(
                item.payload,
                content_sha256=item.sha256,
                paths=item.paths,
                model=self.model,
                ingested_at=now,
            )
            for item in batch
        ]
        if self.labeller is not None:  # zero-shot category and auto tags from the vectors
            for payload, labels in zip(payloads, self.labeller.label(vectors), strict=True):
                payload.update(self.labeller.fields(labels, payload))
        points = [
            Point(point_id(item.sha256), vector, payload)
            for item, vector, payload in zip(batch, vectors, payloads, strict=True)
        ]
        with self.clock.stage("upsert"):
            self.store.upsert(points)
        self.counts.indexed += len(batch)
        audio = sum(item.audio_s for item in batch)
        self.counts.audio_s += audio
        progress.advance(files=len(batch), audio_s=audio)
        self._notify()

    def _notify(self) -> None:
        if self.listener is not None:
            self.listener(self.counts)

    def _decode(self, path: str) -> np.ndarray:
        return decode_file(
            path,
            sample_rate=self.limits.sample_rate,
            max_duration_s=self.limits.max_duration_s,
            max_file_bytes=self.limits.max_file_bytes,
        ).samples

    def _prune(self, by_sha: dict[str, list[tuple[str, str]]]) -> None:
        """Drop paths under the roots that no longer hold that content; delete empty points."""
        roots = [str(Path(r).expanduser().resolve()) for r in self.o.roots]
        doomed: list[str] = []
        for record in self.store.scroll(fields=["paths", "content_sha256"]):
            pid, sha = record.id, str(record.payload.get("content_sha256", ""))
            paths = list(record.payload.get("paths") or [])
            if not sha or not in_shard(sha, self.o.shard):
                continue
            here_now = {p for p, _ in by_sha.get(sha, [])}
            # A path outside the roots belongs to another library: never touched here.
            keep = [p for p in paths if not _under(p, roots) or p in here_now]
            if len(keep) == len(paths):
                continue
            self.counts.pruned_paths += len(paths) - len(keep)
            if not keep:
                doomed.append(pid)
            elif not self.o.dry_run:
                self.store.set_paths(pid, sorted(keep))
        self.counts.deleted_points += len(doomed)
        if doomed and not self.o.dry_run:
            self.store.delete(doomed)

    def _fail(self, failure: Failure) -> None:
        self.counts.failed += 1
        self.failures.add(failure)
        log.warning("failed: %s (%s)", failure.path, failure.message)


def _under(path: str, roots: Iterable[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)
