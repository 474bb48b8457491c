"""Which engine answers a query vector: the snapshot (exact, in-process) or Qdrant.

- No filter: the snapshot when one is loaded, else Qdrant.
- A filter: the snapshot's filtered scan when it can answer exactly what Qdrant would —
  every condition names one of its columns, and it holds exactly what the live collection
  holds (same collection, same write marker) — and the filter matches at least
  ``snapshot.filtered_min_points`` points. Otherwise Qdrant, exact, with its payload indexes:
  the cheaper engine for a selective filter, and the source of truth while the snapshot lags.

The selectivity is the snapshot's own count of the filter's rows: exact, and equal to Qdrant's
``VectorStore.count(filter)`` whenever the snapshot is current (a congruence test pins it),
so deciding costs no round trip. Both engines rank by the same exact inner products, so a
query gets the same ids and scores whichever answers (tests pin that too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from timbre.errors import StoreError, UnavailableError
from timbre.search.holders import StoreHandle
from timbre.store import Hit, SearchFilter, VectorStore
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


def search(
    snapshot: Snapshot | None,
    store: StoreHandle,
    policy: RoutingPolicy | None,
    vector: np.ndarray,
    *,
    top_k: int,
    offset: int,
    filter: SearchFilter | None,
) -> tuple[list[Hit], str]:
    """Hits for ``vector`` and the engine that found them (``faiss`` or ``qdrant``).

    Args:
        policy: None = Qdrant answers every filtered query.

    Raises:
        UnavailableError: Qdrant is needed and unreachable.
    """
    if filter is None or filter.is_empty:
        if snapshot is not None:
            return snapshot.search(vector, top_k, offset), FAISS
        hits = store.get().search(vector, top_k=top_k, offset=offset, exact=True)
        return hits, QDRANT
    try:
        live = store.get()
        selection = _snapshot_selection(snapshot, live, policy, filter)
        if snapshot is not None and selection is not None:
            return snapshot.search(vector, top_k, offset, selection), FAISS
        hits = live.search(vector, top_k=top_k, offset=offset, filter=filter, exact=True)
    except StoreError as exc:
        raise UnavailableError(f"filtered search needs Qdrant, which failed: {exc}") from exc
    return hits, QDRANT


def _snapshot_selection(
    snapshot: Snapshot | None,
    live: VectorStore,
    policy: RoutingPolicy | None,
    filter: SearchFilter,
) -> Selection | None:
    """The snapshot's rows for ``filter`` if the snapshot should answer it, else None."""
    if snapshot is None or policy is None or not is_current(snapshot, live):
        return None
    selection = snapshot.select(filter)
    if selection is None or selection.count < policy.filtered_min_points:
        return None
    return selection


def is_current(snapshot: Snapshot, live: VectorStore) -> bool:
    """True when the snapshot holds exactly what the live collection holds now."""
    info = live.describe()  # one read: name and write marker of the same collection
    manifest = snapshot.manifest
    return (
        info.name == manifest.source_collection and info.last_write.seq == manifest.source_write.seq
    )
