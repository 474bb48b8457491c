"""The ingest job: library folders in, indexed and filterable points out.

Stages: discover -> hash -> lookup -> decode + analyse (workers) -> mert (or the feature
cache) -> tower -> upsert -> [prune] -> rederive. Safe to re-run and to kill: a point's id is
its content hash, stored content is never embedded again, and memory stays bounded (a window
of files in flight, batches flushed by audio duration).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ingest.cache import FeatureCache, HashCache
from ingest.derive import Rederiver, rederive, rewrite, root_of
from ingest.discover import Found, Skipped, discover, discover_changed
from ingest.metadata import MetadataRules
from ingest.options import Embedder, JobOptions, JobResult, Limits, in_shard
from ingest.prune import prune
from ingest.report import (
    Counts,
    Failure,
    FailureLog,
    Progress,
    SkipLog,
    StageClock,
    exit_code,
    summary,
)
from ingest.workers import Prepared, decode, decoding_pool, hash_file, prepare, stop_pool
from timbre.embedding.info import ModelInfo
from timbre.labels import Labeller
from timbre.store import Collection, Point, build_payload, point_id
from timbre.store.pathtext import path_from_text, path_text

log = logging.getLogger("timbre.ingest")


class IngestJob:
    """One run over the library roots (``embedder`` None: a dry run); then :meth:`run`."""

    def __init__(
        self,
        options: JobOptions,
        *,
        embedder: Embedder | None,
        store: Collection,
        rules: MetadataRules,
        limits: Limits,
        model: ModelInfo,
        hash_cache: HashCache | None,
        feature_cache: FeatureCache | None,
        failures: FailureLog,
        skipped: SkipLog | None = None,
        listener: Callable[[Counts], None] | None = None,
        labeller: Labeller | None = None,
        library_roots: Sequence[Path] = (),
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
        self.skipped = skipped or SkipLog(None)
        self.listener = listener
        self.counts = Counts()
        self.clock = StageClock()
        self._pool: ProcessPoolExecutor | None = None
        self._hashed: dict[str, str | None] = {}  # path text -> content hash (None: unreadable)
        # What a dry run would do, listed in its summary.
        self.plan: dict[str, list[str]] = {"embed": [], "add_paths": []}
        known = tuple(dict.fromkeys(_resolved((*options.roots, *library_roots))))
        self.rederiver = Rederiver(rules, known, limits, labeller)
        self._moved: set[str] = set()  # ids whose paths changed: their facts are derived anew

    def run(self) -> JobResult:
        started = time.perf_counter()
        extra: dict[str, Any] = {
            "dry_run": self.o.dry_run,
            "shard": self.o.shard,
            "profile": self.o.profile,
        }
        if self.o.profile == "parallel" and self.o.workers > 0:
            self._pool = decoding_pool(self.o.workers)
        finished = False
        try:
            with self.clock.stage("discover"):
                found = list(self._discover())
            self.counts.discovered = len(found)
            if self.skipped.by_reason:
                log.info(
                    "passed over %d entries (%s): see the skipped report",
                    self.counts.skipped,
                    ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.by_reason.items())),
                )
            if not found and not self.o.targeted:
                log.error(
                    "found no audio under %s (%d entries passed over: see the skipped report)",
                    ", ".join(str(r) for r in self.o.roots),
                    self.counts.skipped,
                )
            with self.clock.stage("hash"):
                by_sha = self._hash_all(found)
            with self.clock.stage("lookup"):
                todo = self._lookup(by_sha)
            self.counts.to_embed = len(todo)
            self._notify()
            if self.o.dry_run:
                self.plan["embed"] = sorted(where[0][0] for _, where in todo)
            else:
                self._embed_all(todo)
            if self.o.prune or self.o.targeted:
                with self.clock.stage("prune"):
                    extra["pruned"] = self._prune(by_sha)
            if self._moved and not self.o.dry_run:
                with self.clock.stage("rederive"):
                    self.counts.rederived += rederive(self.store, self.rederiver, self._moved)
            finished = True
        finally:
            if self._pool is not None:
                stop_pool(self._pool, abort=not finished)
            self.failures.close()
            self.skipped.close()
        if self.hash_cache is not None:
            self.counts.rehashed_changed = self.hash_cache.changed_in_place
        if self.o.dry_run:
            extra["would"] = self.plan
        result = summary(
            self.counts,
            self.clock,
            self.failures,
            self.skipped,
            wall_s=time.perf_counter() - started,
            extra=extra,
        )
        return JobResult(result, exit_code(self.counts, targeted=self.o.targeted))

    def _discover(self) -> Iterator[Found]:
        if self.o.changed is None:
            if self.o.targeted:
                return iter(())  # only paths gone: nothing to read
            return discover(self.o.roots, on_skip=self._skip)
        return discover_changed(self.o.roots, self.o.changed, on_skip=self._skip)

    def _skip(self, skipped: Skipped) -> None:
        self.counts.skipped += 1
        if skipped.reason == "unreadable":
            self.counts.unreadable += 1
            log.warning("cannot read %s (%s)", skipped.path, skipped.detail)
        elif skipped.reason == "empty_root":
            log.warning("library root %s is empty", skipped.path)
        self.skipped.add(skipped.path, skipped.reason, skipped.detail)

    def _hash_all(self, found: Sequence[Found]) -> dict[str, list[tuple[str, str]]]:
        """Content hash -> [(path, root)] (text forms) for files in this shard."""
        by_sha: dict[str, list[tuple[str, str]]] = {}
        roots = {f.text: path_text(f.root) for f in found}
        for path, sha, error in self._hashes(list(roots)):
            self._hashed[path] = sha
            if sha is None:
                self._fail(Failure(path, "hash", "unreadable", error or "cannot read"))
                continue
            if not in_shard(sha, self.o.shard):
                self.counts.other_shards += 1
                continue
            root = root_of(path, self.rederiver.roots) or roots[path]
            by_sha.setdefault(sha, []).append((path, root))
        return by_sha

    def _hashes(self, paths: Sequence[str]) -> Iterator[tuple[str, str | None, str | None]]:
        misses = []
        for path in paths:
            if self.hash_cache is None:
                misses.append(path)
                continue
            try:
                yield path, self.hash_cache.sha256(path), None
            except OSError as exc:
                yield path, None, f"{type(exc).__name__}: {exc.strerror or exc}"
        if self._pool is not None and len(misses) > 1:
            yield from self._pool.map(hash_file, misses, chunksize=16)
        else:
            yield from map(hash_file, misses)

    def _lookup(
        self, by_sha: dict[str, list[tuple[str, str]]]
    ) -> list[tuple[str, list[tuple[str, str]]]]:
        """Split contents into already indexed (maybe at new paths, rederived after the prune)
        and to embed."""
        todo = []
        shas = sorted(by_sha)
        for start in range(0, len(shas), 256):
            chunk = shas[start : start + 256]
            ids = [point_id(s) for s in chunk]
            known = {r.id: r.payload for r in self.store.retrieve(ids)}
            stale: dict[str, dict[str, Any]] = {}
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
                    if self.o.dry_run:
                        self.plan["add_paths"].extend(sorted(set(merged) - set(stored)))
                    else:
                        self.store.set_paths(pid, merged)
                        self._moved.add(pid)
                elif not self.o.dry_run and (fields := self.rederiver.changes(payload, full=False)):
                    stale[pid] = fields
            if stale:
                self.counts.rederived += rewrite(self.store, stale)
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
                    progress.advance(files=0, failed=1)
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
                batch[i].samples = decode(path_from_text(batch[i].paths[0]), self.limits).samples
        if missing:
            assert self.embedder is not None
            with self.clock.stage("mert"):
                computed = self.embedder.features([batch[i].samples for i in missing])  # type: ignore[misc]
            for i, feats in zip(missing, computed, strict=True):
                features[i] = feats
                if self.feature_cache is not None:
                    self.feature_cache.put(batch[i].sha256, feats)
        assert self.embedder is not None  # only a dry run has none, and it embeds nothing
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

    def _prune(self, by_sha: dict[str, list[tuple[str, str]]]) -> dict[str, Any]:
        """Drop the paths under the roots known to be gone or to hold other content now."""
        outcome = prune(
            self.store,
            roots=_resolved(self._prune_scope()),
            library_roots=_resolved(self.o.roots),
            here_now={sha: {p for p, _ in where} for sha, where in by_sha.items()},
            hashed=self._hashed,
            shard=lambda sha: in_shard(sha, self.o.shard),
            dry_run=self.o.dry_run,
        )
        self.counts.pruned_paths += outcome.pruned_paths
        self.counts.deleted_points += outcome.deleted_points
        self.counts.kept_unreadable_paths += len(outcome.kept)
        self._moved.update(outcome.touched)
        for path, why in outcome.kept:
            log.warning("not pruned: %s (%s)", path, why)
        return outcome.as_dict(self.o.dry_run)

    def _prune_scope(self) -> tuple[Path, ...]:
        """What the prune may touch: the roots, or only a watcher batch's named paths."""
        if not self.o.targeted:
            return self.o.roots
        return (*(self.o.changed or ()), *self.o.gone)

    def _fail(self, failure: Failure) -> None:
        self.counts.failed += 1
        self.failures.add(failure)
        log.warning("failed: %s (%s)", failure.path, failure.message)


def _resolved(paths: Iterable[Path]) -> list[str]:
    """Paths as the store holds them: absolute, links resolved, in stored text form."""
    return [path_text(os.path.realpath(Path(p).expanduser())) for p in paths]
