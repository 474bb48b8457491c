"""Which engine answers a query vector: the snapshot (exact, in-process) or Qdrant.

- No filter: the snapshot when one is loaded, else Qdrant.
- A filter: the snapshot's filtered scan when it can answer exactly what Qdrant would —
  every condition names one of its columns, and it holds exactly what the live collection
  holds (same collection, same write marker) — and the filter matches at least
  ``snapshot.filtered_min_points`` points. Otherwise Qdrant, exact, with its payload indexes:
  the cheaper engine for a selective filter, and the source of truth while the snapshot lags.

The selectivity is the snapshot's own count of the filter's rows: exact, and equal to Qdrant's
``Collection.count(filter)`` whenever the snapshot is current (a congruence test pins it),
so deciding costs no round trip, and the same count is the query's ``total`` (how many
points pass the filter) whichever engine answers: a broad filter would otherwise pay for a
second, exact Qdrant count (~20 ms at 100k points, as much as the scan itself). Both engines
rank by the same exact inner products, so a query gets the same ids and scores whichever
answers (tests pin that too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from timbre.errors import StoreError, UnavailableError
from timbre.search.holders import StoreHandle
from timbre.store import Collection, Hit, SearchFilter
from timbre.store.snapshot import Selection, Snapshot

FAISS = "faiss"
QDRANT = "qdrant"


@dataclass(frozen=True)
class RoutingPolicy:
    """When a filtered query goes to the snapshot (the ``snapshot`` settings).

    Attributes:
        filtered_min_points: a filter must match at least this many points (count).
    """

    filtered_min_points: int


class Routed(NamedTuple):
    """The hits of a query, the engine that found them, and how many points pass its filter
    when that is known without asking Qdrant (the snapshot's size or its exact filter count;
    None otherwise)."""

    hits: list[Hit]
    engine: str
    matching: int | None


def search(
    snapshot: Snapshot | None,
    store: StoreHandle,
    policy: RoutingPolicy | None,
    vector: np.ndarray,
    *,
    top_k: int,
    offset: int,
    filter: SearchFilter | None,
) -> Routed:
    """Hits for ``vector``, the engine that found them (``faiss`` or ``qdrant``), the count.

    Args:
        policy: None = Qdrant answers every filtered query.

    Raises:
        UnavailableError: Qdrant is needed and unreachable.
    """
    if filter is None or filter.is_empty:
        if snapshot is not None:
            return Routed(snapshot.search(vector, top_k, offset), FAISS, len(snapshot))
        hits = store.get().live().search(vector, top_k=top_k, offset=offset, exact=True)
        return Routed(hits, QDRANT, None)
    try:
        live = store.get().live()
        selection = _current_selection(snapshot, live, policy, filter)
        matching = None if selection is None else selection.count
        if (
            snapshot is not None
            and policy is not None
            and selection is not None
            and selection.count >= policy.filtered_min_points
        ):
            return Routed(snapshot.search(vector, top_k, offset, selection), FAISS, matching)
        hits = live.search(vector, top_k=top_k, offset=offset, filter=filter, exact=True)
    except StoreError as exc:
        raise UnavailableError(f"filtered search needs Qdrant, which failed: {exc}") from exc
    return Routed(hits, QDRANT, matching)


def _current_selection(
    snapshot: Snapshot | None,
    live: Collection,
    policy: RoutingPolicy | None,
    filter: SearchFilter,
) -> Selection | None:
    """The snapshot's rows for ``filter`` when it may decide (routing on, the snapshot current,
    every condition on one of its columns), else None."""
    if snapshot is None or policy is None or not is_current(snapshot, live):
        return None
    return snapshot.select(filter)


def is_current(snapshot: Snapshot, live: Collection) -> bool:
    """True when the snapshot holds exactly what the live collection holds now."""
    info = live.describe()  # one read: name and write marker of the same collection
    manifest = snapshot.manifest
    return (
        info.name == manifest.source_collection and info.last_write.seq == manifest.source_write.seq
    )
