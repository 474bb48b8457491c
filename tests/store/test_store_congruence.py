"""FAISS and Qdrant answer the same queries the same way, and filters match a numpy oracle.

Runs on every adapter: embedded Qdrant Edge, qdrant-client in-memory (standing in for a
server), and a real server when TIMBRE_QDRANT__URL is set (integration tier).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.store_factory import (
    ADAPTER_PARAMS,
    Dataset,
    hit_ids,
    make_dataset,
    model_info,
    oracle_search,
    random_filter,
    store_with_snapshot,
    unit_vectors,
)
from timbre.store import SearchFilter, VectorStore
from timbre.store.snapshot import ScanOptions, Snapshot, export_snapshot, load_snapshot

pytestmark = [
    pytest.mark.congruence,
    pytest.mark.filterwarnings("ignore:Payload indexes have no effect"),
    pytest.mark.filterwarnings("ignore:Local mode performs exact"),
]

N_POINTS = 2000
N_QUERIES = 60
N_FILTERS = 50
SCORE_TOL = 1e-5


@pytest.fixture(scope="module")
def data() -> Dataset:
    return make_dataset(N_POINTS, seed=7)


@pytest.fixture(scope="module", params=ADAPTER_PARAMS)
def loaded(
    request: pytest.FixtureRequest, data: Dataset, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[VectorStore, Snapshot]]:
    data_dir = tmp_path_factory.mktemp(f"congruence-{request.param}")
    with store_with_snapshot(request.param, data, data_dir, upsert_batch=300) as loaded:
        yield loaded


def _assert_same(got: list[tuple[str, float]], want: list[tuple[str, float]]) -> None:
    assert [i for i, _ in got] == [i for i, _ in want]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=SCORE_TOL, rtol=0)


def test_faiss_top_k_equals_qdrant_exact_top_k(
    loaded: tuple[VectorStore, Snapshot], data: Dataset
) -> None:
    store, snapshot = loaded
    assert len(snapshot) == store.live().count() == N_POINTS
    queries = unit_vectors(np.random.default_rng(1), N_QUERIES)
    for query in queries:
        qdrant_hits = store.live().search(query, top_k=10, exact=True)
        faiss_hits = snapshot.search(query, top_k=10)
        _assert_same([(h.id, h.score) for h in faiss_hits], [(h.id, h.score) for h in qdrant_hits])
        _assert_same([(h.id, h.score) for h in faiss_hits], oracle_search(data, query, 10))
        # the same display payload from both routes
        assert [h.payload for h in faiss_hits] == [h.payload for h in qdrant_hits]


def test_indexed_vectors_score_one_against_themselves(
    loaded: tuple[VectorStore, Snapshot], data: Dataset
) -> None:
    store, snapshot = loaded
    for row in (0, 17, N_POINTS - 1):
        point = data.points[row]
        vector = snapshot.vector(point.id)
        assert vector is not None
        np.testing.assert_allclose(vector, data.vectors[row], atol=1e-6)
        assert snapshot.search(vector, top_k=1)[0].id == point.id
        assert store.live().search(vector, top_k=1, exact=True)[0].id == point.id


def test_paging_with_offset_agrees(loaded: tuple[VectorStore, Snapshot], data: Dataset) -> None:
    store, snapshot = loaded
    query = unit_vectors(np.random.default_rng(2), 1)[0]
    for offset in (0, 5, 23):
        want = oracle_search(data, query, 7, offset=offset)
        _assert_same([(h.id, h.score) for h in snapshot.search(query, 7, offset=offset)], want)
        _assert_same(
            [
                (h.id, h.score)
                for h in store.live().search(query, top_k=7, offset=offset, exact=True)
            ],
            want,
        )


def test_filtered_results_equal_the_numpy_oracle(
    loaded: tuple[VectorStore, Snapshot], data: Dataset
) -> None:
    store, _ = loaded
    rng = np.random.default_rng(3)
    queries = unit_vectors(rng, N_FILTERS)
    sizes = []
    for query in queries:
        search_filter = random_filter(rng, data)
        want_all = oracle_search(data, query, N_POINTS, search_filter)
        sizes.append(len(want_all))
        assert store.live().count(search_filter) == len(want_all), search_filter
        got = store.live().search(query, top_k=10, filter=search_filter, exact=True)
        _assert_same([(h.id, h.score) for h in got], want_all[:10])
    # the random filters exercised empty, selective and broad results alike
    assert min(sizes) == 0 or min(sizes) < 20
    assert max(sizes) > 200


def test_filtered_scroll_returns_exactly_the_matching_points(
    loaded: tuple[VectorStore, Snapshot], data: Dataset
) -> None:
    store, _ = loaded
    rng = np.random.default_rng(4)
    for _ in range(10):
        search_filter = random_filter(rng, data)
        want = {i for i, _ in oracle_search(data, data.vectors[0], N_POINTS, search_filter)}
        got = [
            r.id
            for r in store.live().scroll(filter=search_filter, fields=["genre"], batch_size=128)
        ]
        assert len(got) == len(set(got))
        assert set(got) == want


def test_queries_through_the_store_and_snapshot_skip_nothing(
    loaded: tuple[VectorStore, Snapshot],
) -> None:
    store, snapshot = loaded
    query = unit_vectors(np.random.default_rng(5), 1)[0]
    everything = snapshot.search(query, top_k=N_POINTS + 50)
    assert len(everything) == N_POINTS
    assert sorted(hit_ids(everything)) == sorted(r.id for r in store.live().scroll(fields=[]))


def test_snapshot_loaded_without_mmap_answers_identically(
    loaded: tuple[VectorStore, Snapshot], tmp_path: Path
) -> None:
    _, mapped = loaded
    in_ram = load_snapshot(mapped.directory.parent, model_info(), mmap_min_bytes=1 << 60)
    assert mapped.mmapped and not in_ram.mmapped
    for query in unit_vectors(np.random.default_rng(6), 5):
        assert mapped.search(query, 10) == in_ram.search(query, 10)


# -- the snapshot's own filtered scan (flat and quantised) against Qdrant --------------------


@pytest.fixture(scope="module")
def quantised(loaded: tuple[VectorStore, Snapshot]) -> Snapshot:
    """The same snapshot searched with the SQ8 first pass (the threshold lowered to 0)."""
    _, flat = loaded
    return load_snapshot(
        flat.directory.parent,
        model_info(),
        mmap_min_bytes=0,
        scan=ScanOptions(quantised_min_vectors=0, threads=2),
    )


def test_snapshot_counts_every_filter_like_qdrant(
    loaded: tuple[VectorStore, Snapshot], data: Dataset
) -> None:
    store, snapshot = loaded
    rng = np.random.default_rng(8)
    for _ in range(N_FILTERS):
        search_filter = random_filter(rng, data)
        selection = snapshot.select(search_filter)
        assert selection is not None, search_filter
        assert selection.count == store.live().count(search_filter), search_filter


@pytest.mark.parametrize("scan", ["flat", "sq8"])
def test_filtered_snapshot_scan_equals_qdrant(
    loaded: tuple[VectorStore, Snapshot], quantised: Snapshot, data: Dataset, scan: str
) -> None:
    store, flat = loaded
    snapshot = quantised if scan == "sq8" else flat
    assert snapshot.scan.kind == scan
    rng = np.random.default_rng(9)
    sizes = []
    for query in unit_vectors(rng, N_FILTERS):
        search_filter = random_filter(rng, data)
        selection = snapshot.select(search_filter)
        assert selection is not None
        sizes.append(selection.count)
        for top_k, offset in ((10, 0), (7, 5)):
            want = store.live().search(
                query, top_k=top_k, offset=offset, filter=search_filter, exact=True
            )
            got = snapshot.search(query, top_k, offset, selection)
            _assert_same([(h.id, h.score) for h in got], [(h.id, h.score) for h in want])
            assert [h.payload for h in got] == [h.payload for h in want]
    # empty, selective and broad selections alike (broad ones take the quantised path)
    assert min(sizes) < 20 and max(sizes) > 600


def test_a_filter_on_a_field_without_a_column_is_left_to_qdrant(
    loaded: tuple[VectorStore, Snapshot], tmp_path: Path
) -> None:
    store, _ = loaded
    export_snapshot(
        store.live(),
        tmp_path / "snapshots",
        source_mode=store.mode,
        keep=1,
        indexes={"kind": "keyword"},
    )
    partial = load_snapshot(tmp_path / "snapshots", model_info(), mmap_min_bytes=0)
    assert partial.manifest.columns == {"kind": "keyword"}
    assert partial.select(SearchFilter(kind="loop")) is not None
    assert partial.select(SearchFilter(kind="loop", genre="techno")) is None
    assert partial.select(SearchFilter(bpm_min=120)) is None
