"""Recommend queries (Qdrant's average_vector rule) on every adapter agree with the snapshot's
search by the same vector and with a numpy oracle of the formula: same ids, same scores.

On qdrant-client (in-memory here, a real server in the integration tier) the query is Qdrant's
own recommend query, so these tests pin Timbre's formula against Qdrant's implementation.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from tests.support.store_factory import (
    ADAPTER_PARAMS,
    Dataset,
    make_dataset,
    open_test_store,
    oracle_search,
    random_filter,
    store_with_snapshot,
    unit_vectors,
)
from timbre.errors import InvalidRequestError
from timbre.store import VectorStore
from timbre.store.examples import Examples
from timbre.store.schema import load_schema
from timbre.store.snapshot import Snapshot

pytestmark = [
    pytest.mark.congruence,
    pytest.mark.filterwarnings("ignore:Payload indexes have no effect"),
    pytest.mark.filterwarnings("ignore:Local mode performs exact"),
]

N_POINTS = 1000
SCORE_TOL = 1e-5


@pytest.fixture(scope="module")
def data() -> Dataset:
    return make_dataset(N_POINTS, seed=11)


@pytest.fixture(scope="module", params=ADAPTER_PARAMS)
def loaded(
    request: pytest.FixtureRequest, data: Dataset, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[VectorStore, Snapshot]]:
    data_dir = tmp_path_factory.mktemp(f"recommend-{request.param}")
    with store_with_snapshot(request.param, data, data_dir, upsert_batch=500) as loaded:
        yield loaded


def oracle_vector(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """The average_vector rule as Qdrant documents it, written out independently."""
    q = positive.mean(axis=0)
    if len(negative):
        q = 2 * q - negative.mean(axis=0)
    return (q / np.linalg.norm(q)).astype(np.float32)


def draw(rng: np.random.Generator, data: Dataset, n_pos: int, n_neg: int) -> Examples:
    """Stored vectors as examples, plus a fresh vector (as a text query brings) in some."""
    rows = rng.choice(N_POINTS, size=n_pos + n_neg, replace=False)
    positive = list(data.vectors[rows[:n_pos]])
    if rng.random() < 0.5:
        positive.append(unit_vectors(rng, 1)[0])
    return Examples.of(positive, list(data.vectors[rows[n_pos:]]))


def pairs(hits: list) -> list[tuple[str, float]]:  # type: ignore[type-arg]
    return [(h.id, h.score) for h in hits]


def same(got: list[tuple[str, float]], want: list[tuple[str, float]]) -> None:
    assert [i for i, _ in got] == [i for i, _ in want]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=SCORE_TOL, rtol=0)


@pytest.mark.parametrize(("n_pos", "n_neg"), [(1, 0), (1, 1), (3, 2), (2, 7), (10, 10)])
def test_recommend_equals_the_snapshot_and_the_oracle(
    loaded: tuple[VectorStore, Snapshot], data: Dataset, n_pos: int, n_neg: int
) -> None:
    store, snapshot = loaded
    rng = np.random.default_rng(n_pos * 100 + n_neg)
    for _ in range(8):
        examples = draw(rng, data, n_pos, n_neg)
        want = oracle_search(data, oracle_vector(examples.positive, examples.negative), 12)
        qdrant = pairs(store.live().recommend(examples, top_k=12, exact=True))
        faiss = pairs(snapshot.search(examples.vector(), 12))
        same(qdrant, want)
        same(faiss, want)


def test_filtered_and_paged_recommend_equals_the_oracle(
    loaded: tuple[VectorStore, Snapshot], data: Dataset
) -> None:
    store, _ = loaded
    rng = np.random.default_rng(5)
    for _ in range(15):
        examples = draw(rng, data, 2, 3)
        query = oracle_vector(examples.positive, examples.negative)
        search_filter = random_filter(rng, data)
        got = store.live().recommend(examples, top_k=6, offset=4, filter=search_filter, exact=True)
        same(pairs(got), oracle_search(data, query, 6, search_filter, offset=4))


def test_negatives_push_their_neighbourhood_down(
    loaded: tuple[VectorStore, Snapshot], data: Dataset
) -> None:
    store, _ = loaded
    liked, disliked = data.vectors[0], data.vectors[1]
    plain = store.live().recommend(Examples.of([liked]), top_k=N_POINTS, exact=True)
    steered = store.live().recommend(Examples.of([liked], [disliked]), top_k=N_POINTS, exact=True)

    def rank(hits: list, item: str) -> int:  # type: ignore[type-arg]
        return [h.id for h in hits].index(item)

    assert rank(steered, data.ids[1]) > rank(plain, data.ids[1]) + 100


def test_examples_that_cancel_out_are_refused() -> None:
    v = unit_vectors(np.random.default_rng(0), 1)[0]
    with pytest.raises(InvalidRequestError, match="cancel out"):
        Examples.of([v], [2 * v]).vector()  # 2v - 2v = 0
    with pytest.raises(InvalidRequestError, match="positive"):
        Examples.of([], [v])


def test_a_dot_product_collection_scores_recommend_as_cosine(
    tmp_path_factory: pytest.TempPathFactory, data: Dataset
) -> None:
    """Qdrant leaves the average vector unnormalised under Dot: the adapter rescales, so the
    scores are the snapshot's whatever the distance."""
    schema = load_schema().model_copy(
        update={"vectors": load_schema().vectors.model_copy(update={"distance": "Dot"})}
    )
    for adapter in ("edge", "memory"):
        store = open_test_store(adapter, tmp_path_factory.mktemp(f"dot-{adapter}"), schema=schema)
        try:
            store.live().upsert(data.points[:300])
            examples = Examples.of(list(data.vectors[:2]), list(data.vectors[2:4]))
            sub = Dataset(data.points[:300], data.vectors[:300], data.payloads[:300])
            want = oracle_search(sub, oracle_vector(examples.positive, examples.negative), 8)
            same(pairs(store.live().recommend(examples, top_k=8, exact=True)), want)
        finally:
            store.close()
