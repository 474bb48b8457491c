"""SearchService.route: which engine answers, and that the answer does not depend on it.

A real embedded store and a real snapshot; no model is loaded (routing takes query vectors).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.search_factory import modelless_service
from tests.support.store_factory import make_dataset, open_test_store, unit_vectors
from timbre.errors import UnavailableError
from timbre.search import (
    AudioRef,
    StoreHandle,
)
from timbre.search.routing import RoutingPolicy, is_current
from timbre.settings import Settings
from timbre.store import SearchFilter, VectorStore, snapshots_dir
from timbre.store.snapshot import ScanOptions, export_snapshot

BROAD = SearchFilter(kind="one_shot")  # ~65 % of the points
SELECTIVE = SearchFilter(pack="Trap Nation", instrument="kick")  # ~2 %
MIN_POINTS = 100


def _open(data_dir: Path) -> VectorStore:
    opened = open_test_store("edge", data_dir)
    opened.live().upsert(make_dataset(1000, seed=31).points)
    export_snapshot(opened.live(), snapshots_dir(data_dir), source_mode=opened.mode, keep=2)
    return opened


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VectorStore, Path]]:
    """A store and its current snapshot that no test changes."""
    data_dir = tmp_path_factory.mktemp("routing")
    opened = _open(data_dir)
    yield opened, data_dir
    opened.close()


@pytest.fixture
def own(tmp_path: Path) -> Iterator[VectorStore]:
    """A store of the test's own, which it may write to."""
    opened = _open(tmp_path)
    yield opened
    opened.close()


def _pairs(hits: list) -> list[tuple[str, float]]:  # type: ignore[type-arg]
    return [(h.id, round(h.score, 5)) for h in hits]


def test_broad_filters_go_to_the_snapshot_selective_ones_to_qdrant(
    shared: tuple[VectorStore, Path],
) -> None:
    store, tmp_path = shared
    routed = modelless_service(store, tmp_path, RoutingPolicy(filtered_min_points=MIN_POINTS))
    qdrant_only = modelless_service(store, tmp_path, None)
    assert store.live().count(BROAD) >= MIN_POINTS > store.live().count(SELECTIVE) > 0
    for query in unit_vectors(np.random.default_rng(1), 10):
        for search_filter, engine in ((BROAD, "faiss"), (SELECTIVE, "qdrant"), (None, "faiss")):
            hits, used, _ = routed.route(query, top_k=10, filter=search_filter)
            want, by, _ = qdrant_only.route(query, top_k=10, filter=search_filter)
            assert used == engine
            assert by == ("faiss" if search_filter is None else "qdrant")
            assert _pairs(hits) == _pairs(want)


class _CountingStore:
    """The real store, whose live collection counts the exact counts asked of it."""

    def __init__(self, inner: VectorStore) -> None:
        self.inner = inner
        self.counts = 0

    def __getattr__(self, name: str) -> object:
        live = self.inner.live()
        return getattr(live if hasattr(live, name) else self.inner, name)

    def live(self) -> _CountingStore:
        return self

    def count(self, search_filter: SearchFilter | None = None) -> int:
        self.counts += 1
        return self.inner.live().count(search_filter)


def test_the_total_is_the_snapshots_count_when_it_may_decide(
    shared: tuple[VectorStore, Path],
) -> None:
    store, tmp_path = shared
    counting, counting_qdrant = _CountingStore(store), _CountingStore(store)
    policy = RoutingPolicy(filtered_min_points=MIN_POINTS)
    service = modelless_service(counting, tmp_path, policy)  # type: ignore[arg-type]
    qdrant_only = modelless_service(counting_qdrant, tmp_path, None)  # type: ignore[arg-type]
    snapshot = service.library.snapshots.current
    assert snapshot is not None
    ref = AudioRef(id=next(iter(snapshot.ids())))
    for search_filter, engine in ((BROAD, "faiss"), (SELECTIVE, "qdrant"), (None, "faiss")):
        want = store.live().count(search_filter)
        result = service.search_audio(ref, top_k=5, filter=search_filter)
        assert (result.engine, result.total) == (engine, want)
        assert counting.counts == 0  # the snapshot counted, exactly as Qdrant does
        result = qdrant_only.search_audio(ref, top_k=5, filter=search_filter)
        assert result.total == want
    assert counting_qdrant.counts == 2  # without routing, Qdrant counts each filtered query


def test_offsets_and_excludes_give_the_same_hits_on_every_path(
    shared: tuple[VectorStore, Path],
) -> None:
    store, tmp_path = shared
    routed = modelless_service(store, tmp_path, RoutingPolicy(filtered_min_points=0))
    qdrant_only = modelless_service(store, tmp_path, None)
    query = unit_vectors(np.random.default_rng(2), 1)[0]
    first = routed.route(query, top_k=30, filter=BROAD).hits
    exclude = frozenset(h.id for h in first[::3])
    for offset in (0, 4, 25):
        hits, engine, _ = routed.route(query, top_k=8, offset=offset, filter=BROAD, exclude=exclude)
        want, by, _ = qdrant_only.route(
            query, top_k=8, offset=offset, filter=BROAD, exclude=exclude
        )
        assert (engine, by) == ("faiss", "qdrant")
        assert _pairs(hits) == _pairs(want)
        assert not exclude & {h.id for h in hits}
        unfiltered, engine, _ = routed.route(query, top_k=8, offset=offset, exclude=exclude)
        direct = store.live().search(query, top_k=8 + len(exclude), offset=offset, exact=True)
        assert engine == "faiss"
        assert _pairs(unfiltered) == _pairs([h for h in direct if h.id not in exclude][:8])


def test_a_stale_snapshot_leaves_filtered_queries_to_qdrant(
    own: VectorStore, tmp_path: Path
) -> None:
    store = own
    service = modelless_service(store, tmp_path, RoutingPolicy(filtered_min_points=0))
    query = unit_vectors(np.random.default_rng(3), 1)[0]
    assert service.route(query, top_k=5, filter=BROAD).engine == "faiss"

    store.live().upsert(make_dataset(20, seed=77).points)  # the snapshot now lags the store
    snapshot = service.library.snapshots.current
    assert snapshot is not None and not is_current(snapshot, store.live())
    hits, engine, _ = service.route(query, top_k=5, filter=BROAD)
    assert engine == "qdrant"
    assert _pairs(hits) == _pairs(store.live().search(query, top_k=5, filter=BROAD, exact=True))
    assert service.route(query, top_k=5).engine == "faiss"  # unfiltered queries stay on it

    service.library.export_snapshot()  # a fresh snapshot answers filtered queries again
    assert service.route(query, top_k=5, filter=BROAD).engine == "faiss"


def test_filtered_queries_need_qdrant_to_be_reachable(shared: tuple[VectorStore, Path]) -> None:
    store, tmp_path = shared
    service = modelless_service(store, tmp_path, RoutingPolicy(filtered_min_points=0))

    def unreachable() -> VectorStore:
        from timbre.errors import StoreError

        raise StoreError("connection refused")

    service.library.store = StoreHandle(unreachable)
    query = unit_vectors(np.random.default_rng(4), 1)[0]
    assert service.route(query, top_k=3).engine == "faiss"
    with pytest.raises(UnavailableError):
        service.route(query, top_k=3, filter=BROAD)


def test_settings_reach_the_router_and_the_snapshot(settings: Settings) -> None:
    from timbre.cli.wiring import build_service

    service = build_service(settings, store_opener=lambda: None)
    assert service.routing == RoutingPolicy(settings.snapshot.filtered_min_points)
    assert service.library.snapshots.scan == ScanOptions(
        settings.snapshot.quantised_min_vectors, settings.snapshot.scan_threads
    )
