"""SearchService.recommend over a real store and snapshot (no model: example ids only): every
engine gives the same hits, examples are never hits, paging holds, bad input is refused.
The text side (query, avoided words) runs through the API tests with the tiny model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.search_factory import modelless_service
from tests.support.store_factory import (
    Dataset,
    make_dataset,
    new_client,
    open_test_store,
    oracle_search,
)
from timbre.errors import InvalidRequestError, NotFoundError
from timbre.search.routing import RoutingPolicy
from timbre.search.steer import MAX_EXAMPLES, Steering
from timbre.store import SearchFilter, VectorStore, snapshots_dir
from timbre.store.snapshot import export_snapshot

pytestmark = [
    pytest.mark.filterwarnings("ignore:Payload indexes have no effect"),
    pytest.mark.filterwarnings("ignore:Local mode performs exact"),
]

N_POINTS = 600
EVERYTHING = SearchFilter(duration_min_s=0)  # every point passes: Qdrant answers, same set
NO_ID = "00000000-0000-5000-8000-000000000000"


@pytest.fixture(scope="module")
def data() -> Dataset:
    return make_dataset(N_POINTS, seed=23)


@pytest.fixture(scope="module", params=["edge", "memory"])
def opened(
    request: pytest.FixtureRequest, data: Dataset, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[VectorStore, Path]]:
    data_dir = tmp_path_factory.mktemp(f"steer-{request.param}")
    client = new_client(request.param) if request.param != "edge" else None
    store = open_test_store(request.param, data_dir, client=client)
    store.live().upsert(data.points)
    export_snapshot(store.live(), snapshots_dir(data_dir), source_mode=store.mode, keep=2)
    yield store, data_dir
    store.close()


def pairs(hits: list) -> list[tuple[str, float]]:  # type: ignore[type-arg]
    return [(h.id, round(h.score, 5)) for h in hits]


def oracle(data: Dataset, positive: list[int], negative: list[int], n: int, offset: int = 0):  # type: ignore[no-untyped-def]
    q = data.vectors[positive].mean(axis=0)
    if negative:
        q = 2 * q - data.vectors[negative].mean(axis=0)
    q = (q / np.linalg.norm(q)).astype(np.float32)
    examples = {data.ids[i] for i in positive + negative}
    ranked = [p for p in oracle_search(data, q, N_POINTS) if p[0] not in examples]
    return [(i, round(s, 5)) for i, s in ranked[offset : offset + n]]


def test_every_engine_gives_the_same_hits_without_the_examples(
    opened: tuple[VectorStore, Path], data: Dataset
) -> None:
    store, data_dir = opened
    routed = modelless_service(store, data_dir, RoutingPolicy(filtered_min_points=0))
    qdrant = modelless_service(store, data_dir, None)
    rng = np.random.default_rng(4)
    for n_pos, n_neg in ((1, 0), (2, 1), (5, 5)):
        rows = [int(r) for r in rng.choice(N_POINTS, n_pos + n_neg, replace=False)]
        steering = Steering(
            positive=tuple(data.ids[r] for r in rows[:n_pos]),
            negative=tuple(data.ids[r] for r in rows[n_pos:]),
        )
        want = oracle(data, rows[:n_pos], rows[n_pos:], 10)
        fast = routed.recommend(steering, top_k=10)
        snapshot_filtered = routed.recommend(steering, top_k=10, filter=EVERYTHING)
        exact = qdrant.recommend(steering, top_k=10, filter=EVERYTHING)
        assert (fast.engine, snapshot_filtered.engine, exact.engine) == ("faiss", "faiss", "qdrant")
        for result in (fast, snapshot_filtered, exact):
            assert pairs(result.hits) == want
            assert not set(steering.positive + steering.negative) & {h.id for h in result.hits}
        assert fast.total == N_POINTS - n_pos - n_neg
        assert fast.query == {
            "positive": list(steering.positive),
            "negative": list(steering.negative),
            "text": None,
            "avoid": [],
        }


def test_pages_follow_each_other_without_the_examples(
    opened: tuple[VectorStore, Path], data: Dataset
) -> None:
    store, data_dir = opened
    for service in (
        modelless_service(store, data_dir, RoutingPolicy(filtered_min_points=0)),
        modelless_service(store, data_dir, None),
    ):
        steering = Steering(positive=(data.ids[0], data.ids[1]), negative=(data.ids[2],))
        whole = service.recommend(steering, top_k=30, filter=EVERYTHING).hits
        pages = [
            service.recommend(steering, top_k=10, offset=o, filter=EVERYTHING) for o in (0, 10, 20)
        ]
        assert pairs([h for p in pages for h in p.hits]) == pairs(whole)
        assert pairs(whole) == oracle(data, [0, 1], [2], 30)


def test_a_filter_keeps_only_its_matches(opened: tuple[VectorStore, Path], data: Dataset) -> None:
    store, data_dir = opened
    service = modelless_service(store, data_dir, None)
    loops = SearchFilter(kind="loop")
    result = service.recommend(Steering(positive=(data.ids[3],)), top_k=50, filter=loops)
    assert result.engine == "qdrant" and result.hits
    assert all(h.payload["kind"] == "loop" for h in result.hits)
    assert result.total is not None and result.total <= store.live().count(loops)


def test_unknown_and_bad_examples_are_refused(
    opened: tuple[VectorStore, Path], data: Dataset
) -> None:
    store, data_dir = opened
    service = modelless_service(store, data_dir, None)
    with pytest.raises(NotFoundError) as caught:
        service.recommend(Steering(positive=(data.ids[0], NO_ID), negative=("nope",)), top_k=5)
    assert NO_ID in str(caught.value) and "nope" in str(caught.value)
    assert data.ids[0] not in str(caught.value)
    with pytest.raises(InvalidRequestError, match="positive id or a query"):
        service.recommend(Steering(negative=(data.ids[0],)), top_k=5)
    with pytest.raises(InvalidRequestError, match="positive id or a query"):
        service.recommend(Steering(avoid=("noise",)), top_k=5)
    with pytest.raises(InvalidRequestError, match="both positive and negative"):
        service.recommend(Steering(positive=(data.ids[0],), negative=(data.ids[0],)), top_k=5)
    many = tuple(data.ids[: MAX_EXAMPLES + 1])
    with pytest.raises(InvalidRequestError, match=f"at most {MAX_EXAMPLES} examples"):
        service.recommend(Steering(positive=many), top_k=5)
    # A repeated id counts once.
    again = service.recommend(Steering(positive=(data.ids[0],) * 3), top_k=3)
    assert pairs(again.hits) == oracle(data, [0], [], 3)


def test_an_example_gone_from_the_store_still_steers_from_the_snapshot(
    tmp_path: Path, data: Dataset
) -> None:
    store = open_test_store("edge", tmp_path)
    try:
        store.live().upsert(data.points[:200])
        export_snapshot(store.live(), snapshots_dir(tmp_path), source_mode=store.mode, keep=2)
        store.live().delete([data.ids[7]])
        service = modelless_service(store, tmp_path, RoutingPolicy(filtered_min_points=0))
        result = service.recommend(Steering(positive=(data.ids[7],)), top_k=5)
        sub = Dataset(data.points[:200], data.vectors[:200], data.payloads[:200])
        assert pairs(result.hits) == oracle(sub, [7], [], 5)
    finally:
        store.close()
