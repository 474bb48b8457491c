"""Concurrent uncached text queries share one text-tower call, with unchanged vectors."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from timbre.search.batcher import TextBatcher

QUERIES = [f"query {i} " + "word " * i for i in range(8)]


def _wait_until(predicate, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_queries_arriving_during_a_call_go_together(text_embedder) -> None:
    """One query runs at once, alone; the seven that arrive meanwhile share the next call,
    and every caller gets the vector its text has alone."""
    calls: list[list[str]] = []
    release = threading.Event()

    def run(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        if len(calls) == 1:
            release.wait(30)
        return text_embedder.embed(texts)

    batcher = TextBatcher(run, max_batch=8)
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(batcher.embed, QUERIES[0])
        _wait_until(lambda: len(calls) == 1)
        rest = [pool.submit(batcher.embed, q) for q in QUERIES[1:]]
        _wait_until(lambda: len(batcher._queue) == 7)
        release.set()
        vectors = [first.result(), *(f.result() for f in rest)]
    assert [len(c) for c in calls] == [1, 7]
    alone = np.stack([text_embedder.embed([q])[0] for q in QUERIES])
    assert np.abs(np.stack(vectors) - alone).max() < 1e-6
    assert (batcher.calls, batcher.queries) == (2, 8)


def test_max_batch_bounds_a_call_and_duplicates_run_once(text_embedder) -> None:
    calls: list[list[str]] = []
    release = threading.Event()

    def run(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        release.wait(30)
        return text_embedder.embed(texts)

    batcher = TextBatcher(run, max_batch=3)
    texts = ["busy", "a", "b", "a", "c", "d"]
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(batcher.embed, texts[0])]
        _wait_until(lambda: len(calls) == 1)
        futures += [pool.submit(batcher.embed, t) for t in texts[1:]]
        _wait_until(lambda: len(batcher._queue) == 5)
        release.set()
        results = [f.result() for f in futures]
    assert all(len(c) <= 3 for c in calls)
    assert sum(len(c) for c in calls) < len(texts)  # "a" once, though asked twice
    np.testing.assert_array_equal(results[1], results[3])


def test_a_failed_call_fails_each_of_its_callers_and_the_next_call_runs() -> None:
    attempts = []

    def run(texts: list[str]) -> np.ndarray:
        attempts.append(texts)
        if len(attempts) == 1:
            raise RuntimeError("model exploded")
        return np.ones((len(texts), 4), np.float32)

    batcher = TextBatcher(run, max_batch=8)
    with pytest.raises(RuntimeError, match="model exploded"):
        batcher.embed("x")
    assert batcher.embed("y").shape == (4,)
