"""Browsing the library without a query: a folder's samples in path order, an item's full
payload and its near-duplicates for a details view."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from timbre.errors import NotFoundError, StoreError, UnavailableError
from timbre.search.duplicates import keep_key
from timbre.search.layers import layer_name
from timbre.search.service import SearchService
from timbre.store import Hit, SearchFilter
from timbre.store.payload import DERIVED_FIELDS, DISPLAY_FIELDS

HIDDEN_FIELDS = frozenset(DERIVED_FIELDS)
"""Payload fields the store derives for its own indexes (``dirs``, the ``*_norm`` companions
of filterable fields); a person gains nothing seeing them."""


@dataclass(frozen=True)
class BrowsePage:
    """Some samples matching a filter, in path order, and how many match in all."""

    items: list[tuple[str, dict[str, Any]]]  # (id, display payload)
    total: int
    took_ms: float


@dataclass(frozen=True)
class ItemDuplicates:
    """The near-duplicates of one item, best first, and which of them all to keep.

    Attributes:
        hits: other samples whose vector and duration agree with the item's
            (``duplicates`` settings), with their cosine to it.
        keep: id of the one :data:`~timbre.search.duplicates.KEEP_RULE` keeps, among the item
            and its near-duplicates (the item itself when it has none).
        layers: its velocity layers or round robins (same folder, names differing only by
            Soft/Hard, v1, rr2, _01...) that are as close: not duplicates, so not in ``hits``.
    """

    hits: list[Hit]
    keep: str
    layers: list[Hit] = field(default_factory=list)


class BrowseService:
    """Listing and details, beside the search service (same store and snapshot).

    Args:
        search: the search service whose store is read.
    """

    def __init__(self, search: SearchService) -> None:
        self.search = search

    def browse(self, filter: SearchFilter | None, *, limit: int, offset: int = 0) -> BrowsePage:
        """The samples matching ``filter`` (all without one) sorted by path, from ``offset``.

        Qdrant has no order by string, so the matching payloads are scrolled and sorted here:
        fine for a folder or a pack; the whole of a 100k library takes a few seconds.

        Raises:
            UnavailableError: the store is unreachable.
        """
        started = time.perf_counter()
        try:
            store = self.search.store.get().live()
            records = list(store.scroll(filter=filter, fields=DISPLAY_FIELDS))
        except StoreError as exc:
            raise UnavailableError(f"browsing needs Qdrant, which failed: {exc}") from exc
        records.sort(key=lambda r: (str(r.payload.get("path") or "").casefold(), r.id))
        page = records[offset : offset + limit]
        items = [(r.id, r.payload) for r in page]
        return BrowsePage(items, len(records), (time.perf_counter() - started) * 1e3)

    def payload(self, item_id: str) -> dict[str, Any]:
        """Every stored field of an item (Qdrant's full payload; the snapshot's display
        fields when Qdrant is unreachable).

        Raises:
            NotFoundError: not indexed.
        """
        display = self.search.item(item_id)  # checks the id, and raises NotFoundError
        try:
            records = self.search.store.get().live().retrieve([item_id])
        except (UnavailableError, StoreError):
            records = []
        if not records:
            if not display:
                raise NotFoundError(f"no indexed item {item_id}")
            return dict(display)
        return {k: v for k, v in records[0].payload.items() if k not in HIDDEN_FIELDS}

    def duplicates(self, item_id: str) -> ItemDuplicates:
        """The near-duplicates of one item: the duplicate report's rules
        (:class:`~timbre.search.duplicates.DuplicateRules`) applied to its vector alone, one
        store query with a duration window and a score threshold, so a details view need not
        run the library-wide report.

        Raises:
            NotFoundError: not indexed.
            UnavailableError: the store is unreachable.
        """
        rules = self.search.limits.duplicate_rules
        self.search.item(item_id)  # checks the id, and raises NotFoundError
        try:
            store = self.search.store.get().live()
            records = store.retrieve([item_id], with_vectors=True)
            if not records or records[0].vector is None:
                raise NotFoundError(f"no indexed item {item_id}")
            item = records[0]
            duration = item.payload.get("duration_s")
            if not isinstance(duration, int | float):
                return ItemDuplicates([], item_id)  # durations must agree: none without one
            low, high = rules.window(float(duration))
            [found] = store.search_batch(
                np.asarray(item.vector, dtype=np.float32)[None, :],
                top_k=rules.neighbours,
                filters=[SearchFilter(duration_min_s=low, duration_max_s=high)],
                score_threshold=rules.min_cosine,
            )
        except StoreError as exc:
            raise UnavailableError(f"near-duplicates need Qdrant, which failed: {exc}") from exc
        close = [
            h
            for h in found
            if h.id != item_id
            and isinstance(h.payload.get("duration_s"), int | float)
            and rules.durations_agree(float(duration), float(h.payload["duration_s"]))
        ]
        name = layer_name(str(item.payload.get("path") or ""))
        layers = [h for h in close if name.is_layer_of(layer_name(str(h.payload.get("path"))))]
        hits = [h for h in close if all(h.id != other.id for other in layers)]
        everyone = [(item_id, item.payload), *((h.id, h.payload) for h in hits)]
        keep = min(everyone, key=lambda pair: keep_key(pair[1]))[0]
        return ItemDuplicates(hits, keep, layers)
