"""Concurrent uncached text queries share one text-tower call.

Model work runs one call at a time (``SearchService.model_lock``) and one call on 8 queries
costs far less than 8 calls (``bench/results/``). The first caller to find the tower idle
leads: it runs every waiting query (up to ``max_batch``, oldest first) in one call and hands
each its vector. A query alone on an idle service runs at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class _Waiting:
    text: str
    vector: np.ndarray | None = None
    error: BaseException | None = None
    done: bool = False


class TextBatcher:
    """Combines concurrent text queries into batches for ``run`` (distinct texts -> ``[n,
    dim]`` in order), at most ``max_batch`` per call (1 = no batching)."""

    def __init__(self, run: Callable[[list[str]], np.ndarray], max_batch: int) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._run = run
        self.max_batch = max_batch
        self._cv = threading.Condition()
        self._queue: list[_Waiting] = []
        self._running = False
        self.calls = 0  # queries / calls is the mean batch
        self.queries = 0

    def embed(self, text: str) -> np.ndarray:
        """The vector of ``text`` (raises what ``run`` raised for its batch)."""
        me = _Waiting(text)
        with self._cv:
            self._queue.append(me)
        while True:
            with self._cv:
                while self._running and not me.done:
                    self._cv.wait()
                if me.done:
                    break
                self._running = True
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
            try:
                self._serve(batch)
            finally:
                with self._cv:
                    self._running = False
                    self._cv.notify_all()
        if me.error is not None:
            raise me.error
        assert me.vector is not None
        return me.vector

    def _serve(self, batch: list[_Waiting]) -> None:
        texts = list(dict.fromkeys(w.text for w in batch))
        try:
            vectors = self._run(texts)
        except BaseException as exc:  # every caller of the batch sees the failure
            for w in batch:
                w.error, w.done = exc, True
            return
        by_text = dict(zip(texts, vectors, strict=True))
        for w in batch:
            w.vector, w.done = by_text[w.text], True
        self.calls += 1
        self.queries += len(batch)
