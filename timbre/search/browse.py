"""Browsing without a query: a folder's samples in path order, an item's payload and its
near-duplicates, and the folder tree with its counts.

Folder counts are exact facets of the indexed ``dirs`` payload field (every ancestor of every
path) under a ``path_prefix`` filter. The tree's top is the library roots (one root: its
sub-folders), or else the deepest folder every sample lies under.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from timbre.errors import NotFoundError, StoreError, UnavailableError
from timbre.search.duplicates import keep_key, neighbours
from timbre.search.fitting import FitQuery, rank_by_fit
from timbre.search.layers import layer_name
from timbre.search.library import Library
from timbre.store import Hit, SearchFilter
from timbre.store.payload import DERIVED_FIELDS, DIRS_FIELD, DISPLAY_FIELDS, normalize_dir

HIDDEN_FIELDS = frozenset(DERIVED_FIELDS)
"""Fields the store derives for its own indexes (``dirs``, ``*_norm``): not shown to people."""
MAX_FOLDERS = 10_000
"""Distinct folders counted per listing: a sub-tree, not the whole of a huge library's."""


@dataclass(frozen=True)
class BrowsePage:
    """Some samples matching a filter, in path order, and how many match in all."""

    items: list[tuple[str, dict[str, Any]]]  # (id, display payload)
    total: int
    took_ms: float


@dataclass(frozen=True)
class ItemDuplicates:
    """The near-duplicates of one item, best first (``hits``, with their cosine to it), the
    id :data:`~timbre.search.duplicates.KEEP_RULE` keeps among them and the item, and its
    velocity layers or round robins that are as close (not duplicates, so not in ``hits``)."""

    hits: list[Hit]
    keep: str
    layers: list[Hit] = field(default_factory=list)


class BrowseService:
    """Listings, details and the folder tree of a :class:`Library`."""

    def __init__(self, library: Library) -> None:
        self.library = library

    def browse(
        self,
        filter: SearchFilter | None,
        *,
        limit: int,
        offset: int = 0,
        fit: FitQuery | None = None,
    ) -> BrowsePage:
        """The samples matching ``filter`` (all without one) sorted by path, from ``offset``;
        ``fit`` may put the ones fitting its project first, or keep only those (every sample
        is ranked: the total is exact). Qdrant has no order by string, so the payloads are
        scrolled and sorted here."""
        started = time.perf_counter()
        try:
            store = self.library.store.get().live()
            records = list(store.scroll(filter=filter, fields=DISPLAY_FIELDS))
        except StoreError as exc:
            raise UnavailableError(f"browsing needs Qdrant, which failed: {exc}") from exc
        records.sort(key=lambda r: (str(r.payload.get("path") or "").casefold(), r.id))
        if fit is not None and fit.reranks:
            records = rank_by_fit(records, fit, lambda r: r.payload)
        page = records[offset : offset + limit]
        items = [(r.id, r.payload) for r in page]
        return BrowsePage(items, len(records), (time.perf_counter() - started) * 1e3)

    def payload(self, item_id: str) -> dict[str, Any]:
        """Every stored field of an item (Qdrant's full payload; the snapshot's display
        fields when Qdrant is unreachable)."""
        display = self.library.item(item_id)  # checks the id, and raises NotFoundError
        try:
            records = self.library.store.get().live().retrieve([item_id])
        except (UnavailableError, StoreError):
            records = []
        if not records:
            if not display:
                raise NotFoundError(f"no indexed item {item_id}")
            return dict(display)
        return {k: v for k, v in records[0].payload.items() if k not in HIDDEN_FIELDS}

    def duplicates(self, item_id: str) -> ItemDuplicates:
        """The duplicate report's rules applied to one item's vector alone: one store query
        with a duration window and a score threshold, not the library-wide report."""
        rules = self.library.limits.duplicate_rules
        self.library.item(item_id)  # checks the id, and raises NotFoundError
        try:
            store = self.library.store.get().live()
            records = store.retrieve([item_id], with_vectors=True)
            if not records or records[0].vector is None:
                raise NotFoundError(f"no indexed item {item_id}")
            item = records[0]
            if not isinstance(item.payload.get("duration_s"), int | float):
                return ItemDuplicates([], item_id)  # durations must agree: none without one
            [close] = neighbours(store, [item], rules)
        except StoreError as exc:
            raise UnavailableError(f"near-duplicates need Qdrant, which failed: {exc}") from exc
        name = layer_name(str(item.payload.get("path") or ""))
        layers = [h for h in close if name.is_layer_of(layer_name(str(h.payload.get("path"))))]
        hits = [h for h in close if all(h.id != other.id for other in layers)]
        everyone = [(item_id, item.payload), *((h.id, h.payload) for h in hits)]
        keep = min(everyone, key=lambda pair: keep_key(pair[1]))[0]
        return ItemDuplicates(hits, keep, layers)

    def _counts(self, under: str | None) -> tuple[dict[str, int], int]:
        store = self.library.store.get().live()
        within = SearchFilter(path_prefix=(under,)) if under else None
        try:
            values = store.facets([DIRS_FIELD], filter=within, limit=MAX_FOLDERS)[DIRS_FIELD]
            total = store.count(within)
        except StoreError as exc:
            raise UnavailableError(f"folder counts need Qdrant, which failed: {exc}") from exc
        return {v.value: v.count for v in values}, int(total)

    def _top(self, counts: dict[str, int], total: int) -> tuple[str | None, list[str]]:
        """The folder the top listing shows the inside of (or None), and the top folders."""
        roots = [normalize_dir(str(r)) for r in self.library.limits.library_roots]
        present = [r for r in roots if counts.get(r)]
        if len(present) > 1:
            return None, present
        if present:
            return present[0], []
        # No roots configured: the deepest folder that holds every sample.
        common = [d for d, c in counts.items() if c == total]
        return (max(common, key=len) if common else None), []

    def folders(self, under: str | None = None) -> dict[str, Any]:
        """The folders holding samples directly under ``under`` (the top of the tree when None)
        with their counts, the folder one level up (None: the top) and the samples under it."""
        everything, library_total = self._counts(None)
        top, top_folders = self._top(everything, library_total)
        target = normalize_dir(under) if under else top
        if target is None:
            return _listing(None, None, {p: everything[p] for p in top_folders}, library_total)
        counts, total = (everything, library_total) if under is None else self._counts(target)
        children = {p: c for p, c in counts.items() if p != target and _parent(p) == target}
        at_top = target == top or target in top_folders or under is None
        parent = None if at_top else _parent(target)
        if parent is not None and top is not None and not parent.startswith(top):
            parent = None  # never lead "up" out of the library
        if parent == top:
            parent = None
        return _listing(None if under is None else target, parent, children, total)


def _listing(
    under: str | None, parent: str | None, folders: dict[str, int], total: int
) -> dict[str, Any]:
    rows = [{"path": p, "name": _name(p), "count": c} for p, c in folders.items()]
    return {
        "under": under,
        "name": _name(under) if under else None,
        "parent": parent,
        "parent_name": _name(parent) if parent else None,
        "folders": sorted(rows, key=lambda f: (str(f["name"]).casefold(), f["path"])),
        "total": total,
    }


def _name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] or path


def _parent(path: str) -> str | None:
    head = path.rstrip("/").rsplit("/", 1)[0]
    if head == path.rstrip("/"):
        return None
    return head or "/"
