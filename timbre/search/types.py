"""Value types of the search service: references, results, batch slots, limits, the text cache."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from timbre.errors import (
    InvalidRequestError,
)
from timbre.search.duplicates import DuplicateRules
from timbre.store import Hit, SearchFilter


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
    facet_default_limit: int
    facet_max_limit: int
    duplicate_rules: DuplicateRules


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


def normalize(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    if norm < 1e-12:
        raise InvalidRequestError("the text and audio references cancel out (zero vector)")
    return (vector / norm).astype(np.float32)
