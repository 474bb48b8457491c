"""The library's folder tree, one level at a time, with how many samples each folder holds.

Counts come from facets of the indexed ``dirs`` payload field (every ancestor directory of
every path, see :mod:`timbre.store.payload`) under a ``path_prefix`` filter: exact, from the
payload index, on both store adapters, without reading any payload.

The top of the tree is the configured library roots (when one root, its sub-folders), or else
the deepest folder every sample lies under.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from timbre.errors import StoreError, UnavailableError
from timbre.search.service import SearchService
from timbre.store import SearchFilter
from timbre.store.payload import DIRS_FIELD, normalize_dir

MAX_FOLDERS = 10_000
"""Distinct folders counted per listing: a sub-tree, not the whole of a huge library's."""


@dataclass(frozen=True)
class Folder:
    path: str
    name: str
    count: int


@dataclass(frozen=True)
class FolderListing:
    """The folders directly under ``under`` (the top when None), and where "up" leads.

    Attributes:
        under: the folder listed, None for the top of the tree.
        parent: the folder one level up, None when that is the top.
        folders: its sub-folders holding samples, by name.
        total: samples under ``under`` (the whole library at the top).
    """

    under: str | None
    parent: str | None
    folders: list[Folder]
    total: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "under": self.under,
            "name": _name(self.under) if self.under else None,
            "parent": self.parent,
            "parent_name": _name(self.parent) if self.parent else None,
            "folders": [{"path": f.path, "name": f.name, "count": f.count} for f in self.folders],
            "total": self.total,
        }


def _name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] or path


def _parent(path: str) -> str | None:
    head = path.rstrip("/").rsplit("/", 1)[0]
    if head == path.rstrip("/"):
        return None
    return head or "/"


class FolderService:
    """Lists folders of the live collection.

    Args:
        search: the search service (its store and library roots).
    """

    def __init__(self, search: SearchService) -> None:
        self.search = search

    def _counts(self, under: str | None) -> tuple[dict[str, int], int]:
        store = self.search.store.get().live()
        within = SearchFilter(path_prefix=(under,)) if under else None
        try:
            values = store.facets([DIRS_FIELD], filter=within, limit=MAX_FOLDERS)[DIRS_FIELD]
            total = store.count(within)
        except StoreError as exc:
            raise UnavailableError(f"folder counts need Qdrant, which failed: {exc}") from exc
        return {v.value: v.count for v in values}, int(total)

    def _top(self, counts: dict[str, int], total: int) -> tuple[str | None, list[str]]:
        """The folder the top listing shows the inside of (or None), and the top folders."""
        roots = [normalize_dir(str(r)) for r in self.search.limits.library_roots]
        present = [r for r in roots if counts.get(r)]
        if len(present) > 1:
            return None, present
        if present:
            return present[0], []
        # No roots configured: the deepest folder that holds every sample.
        common = [d for d, c in counts.items() if c == total]
        return (max(common, key=len) if common else None), []

    def list(self, under: str | None = None) -> FolderListing:
        """The folders directly under ``under`` (the top of the tree when None).

        Raises:
            UnavailableError: the store cannot be reached.
        """
        everything, library_total = self._counts(None)
        top, top_folders = self._top(everything, library_total)
        target = normalize_dir(under) if under else top
        if target is None:
            folders = [Folder(p, _name(p), everything[p]) for p in top_folders]
            return FolderListing(None, None, sorted(folders, key=_order), library_total)
        counts, total = (everything, library_total) if under is None else self._counts(target)
        children = [
            Folder(path, _name(path), count)
            for path, count in counts.items()
            if path != target and _parent(path) == target
        ]
        at_top = target == top or target in top_folders or under is None
        parent = None if at_top else _parent(target)
        if parent is not None and top is not None and not parent.startswith(top):
            parent = None  # never lead "up" out of the library
        if parent == top:
            parent = None
        return FolderListing(
            None if under is None else target, parent, sorted(children, key=_order), total
        )


def _order(folder: Folder) -> tuple[str, str]:
    return (folder.name.casefold(), folder.path)
