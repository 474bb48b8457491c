"""Browsing the library without a query: a folder's samples in path order, and an item's full
payload for a details view."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from timbre.errors import NotFoundError, StoreError, UnavailableError
from timbre.search.service import SearchService
from timbre.store import SearchFilter
from timbre.store.payload import DISPLAY_FIELDS

HIDDEN_FIELDS = ("dirs",)
"""Payload fields the store derives for its own indexes; a person gains nothing seeing them."""


@dataclass(frozen=True)
class BrowsePage:
    """Some samples matching a filter, in path order, and how many match in all."""

    items: list[tuple[str, dict[str, Any]]]  # (id, display payload)
    total: int
    took_ms: float


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
            store = self.search.store.get()
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
            records = self.search.store.get().retrieve([item_id])
        except (UnavailableError, StoreError):
            records = []
        if not records:
            if not display:
                raise NotFoundError(f"no indexed item {item_id}")
            return dict(display)
        return {k: v for k, v in records[0].payload.items() if k not in HIDDEN_FIELDS}
