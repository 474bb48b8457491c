"""What the library holds: facet counts of its fields, for people and assistants to browse.

The one function behind ``GET /v1/facets``, the page's filter menus and the MCP
``library_overview`` tool: exact counts from the store's payload indexes (both adapters),
values in display form, most frequent first, optionally under a search filter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from timbre.errors import InvalidRequestError, StoreError, UnavailableError
from timbre.store import SearchFilter
from timbre.store.facets import FACET_FIELDS, FacetValue

if TYPE_CHECKING:
    from timbre.search.service import SearchService


@dataclass(frozen=True)
class LibraryFacets:
    """Values with counts per field, and how many points match the filter."""

    facets: dict[str, list[FacetValue]]
    total: int

    def as_dict(self) -> dict[str, Any]:
        """``{"facets": {field: [{"value", "count"}]}, "total": n}`` (the HTTP body)."""
        return {
            "facets": {
                f: [{"value": v.value, "count": v.count} for v in values]
                for f, values in self.facets.items()
            },
            "total": self.total,
        }


def library_facets(
    service: SearchService,
    fields: Sequence[str] = (),
    *,
    filter: SearchFilter | None = None,
    limit: int | None = None,
) -> LibraryFacets:
    """The most frequent values of ``fields`` (every facet field if empty) under ``filter``.

    Args:
        service: the search service (its store answers; facets need Qdrant, not the snapshot).
        fields: of :data:`~timbre.store.facets.FACET_FIELDS`, in the order wanted.
        filter: count only points matching it.
        limit: values per field (the configured default if None).

    Raises:
        InvalidRequestError: an unknown field, or a limit outside ``[1, facet_max_limit]``.
        UnavailableError: the store cannot be reached.
    """
    wanted = list(dict.fromkeys(fields)) or list(FACET_FIELDS)
    unknown = [f for f in wanted if f not in FACET_FIELDS]
    if unknown:
        raise InvalidRequestError(
            f"field: cannot facet on {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(FACET_FIELDS)}"
        )
    limits = service.limits
    count = limits.facet_default_limit if limit is None else limit
    if not 1 <= count <= limits.facet_max_limit:
        raise InvalidRequestError(f"limit: between 1 and {limits.facet_max_limit} values")
    store = service.store.get().live()
    try:
        facets = store.facets(wanted, filter=filter, limit=count)
        total = store.count(filter)
    except StoreError as exc:
        raise UnavailableError(f"facet counts need Qdrant, which failed: {exc}") from exc
    return LibraryFacets(facets, total)
