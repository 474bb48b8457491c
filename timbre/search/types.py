"""Value types of the search service: references, results, batch slots, limits, the text cache."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from timbre.errors import InvalidRequestError, NotFoundError
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

    def describe(self) -> dict[str, Any]:
        """The reference as a result's ``query`` shows it (never the uploaded bytes)."""
        if self.id is not None:
            return {"id": self.id}
        if self.path is not None:
            return {"path": self.path}
        return {"upload": self.upload_name}


@dataclass
class SearchResult:
    """Hits of one query, which engine answered, and how long it took.

    ``total`` is how many indexed samples the query could return (the whole index without a
    filter, the filter's matches with one), for "20 of 1,234" and paging; None when not counted.
    A palette slot (:mod:`timbre.search.palette`) also carries ``notes`` on how its filters
    were applied and, when it came back empty, ``empty``: why (which filter, how many match
    without it).
    """

    engine: str
    took_ms: float
    hits: list[Hit]
    query: dict[str, Any] = field(default_factory=dict)
    total: int | None = None
    notes: list[str] = field(default_factory=list)
    empty: dict[str, Any] | None = None


@dataclass(frozen=True)
class BatchQuery:
    """One slot of a batch search (e.g. "kick" in a techno context at 124 BPM).

    ``filter`` is the slot's own, ``context`` the one shared by every slot; they are ANDed,
    except that a context's BPM range lets one-shots pass (see :mod:`timbre.search.palette`).
    ``slot`` is the slot's label (``kick``), which may name the instrument wanted.
    """

    query: str
    top_k: int
    filter: SearchFilter | None = None
    offset: int = 0
    context: SearchFilter | None = None
    slot: str | None = None


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
    text_batch_max: int = 1
    """Concurrent uncached text queries per text-tower call (see ``search.batcher``)."""
    roots_problem: str | None = None
    """What went wrong collecting ``library_roots`` (an unreadable roots file), for readiness."""


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


def check_id(item_id: str) -> None:
    """Refuse an item id that is no UUID (no item can have it) as not found."""
    try:
        uuid.UUID(item_id)
    except ValueError:
        raise NotFoundError(f"no indexed item {item_id!r} (ids are UUIDs)") from None


def normalize(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    if norm < 1e-12:
        raise InvalidRequestError("the text and audio references cancel out (zero vector)")
    return (vector / norm).astype(np.float32)
