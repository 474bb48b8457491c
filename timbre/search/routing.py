"""Which engine answers a query vector: the snapshot (exact, in-process) or Qdrant.

Without a filter: the snapshot when one is loaded. With one: the snapshot's filtered scan when
it is current (same collection and write marker), has a column for every condition and the
filter keeps at least ``snapshot.filtered_min_points`` points; else Qdrant with its payload
indexes. Both rank by the same exact inner products, so the hits agree (tests pin both).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from timbre.errors import StoreError, UnavailableError
from timbre.search.holders import StoreHandle
from timbre.store import Collection, Hit, SearchFilter
from timbre.store.examples import Examples
from timbre.store.snapshot import Snapshot

FAISS = "faiss"
QDRANT = "qdrant"


@dataclass(frozen=True)
class RoutingPolicy:
    """When a filtered query goes to the snapshot: it matches at least ``filtered_min_points``."""

    filtered_min_points: int


class Routed(NamedTuple):
    """Hits, the engine that found them, and how many points pass the filter when known
    without asking Qdrant (None otherwise)."""

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
    examples: Examples | None = None,
) -> Routed:
    """Hits for ``vector`` from the engine the rules above choose (``policy`` None: Qdrant
    answers every filtered query). ``examples``: ``vector`` is their average vector, which
    Qdrant is asked for as a recommend query. Raises UnavailableError when Qdrant is needed
    and down."""

    def ask(live: Collection, filter: SearchFilter | None) -> list[Hit]:
        if examples is not None:
            return live.recommend(examples, top_k=top_k, offset=offset, filter=filter, exact=True)
        return live.search(vector, top_k=top_k, offset=offset, filter=filter, exact=True)

    if filter is None or filter.is_empty:
        if snapshot is not None:
            return Routed(snapshot.search(vector, top_k, offset), FAISS, len(snapshot))
        return Routed(ask(store.get().live(), None), QDRANT, None)
    try:
        live = store.get().live()
        selection = None
        if snapshot is not None and policy is not None and is_current(snapshot, live):
            selection = snapshot.select(filter)  # None: a condition it has no column for
            if selection is not None and selection.count >= policy.filtered_min_points:
                hits = snapshot.search(vector, top_k, offset, selection)
                return Routed(hits, FAISS, selection.count)
        hits = ask(live, filter)
    except StoreError as exc:
        raise UnavailableError(f"filtered search needs Qdrant, which failed: {exc}") from exc
    return Routed(hits, QDRANT, None if selection is None else selection.count)


def is_current(snapshot: Snapshot, live: Collection) -> bool:
    """True when the snapshot holds exactly what the live collection holds now."""
    info = live.describe()  # one read: name and write marker of the same collection
    manifest = snapshot.manifest
    return (
        info.name == manifest.source_collection and info.last_write.seq == manifest.source_write.seq
    )
