"""A conjunction of filters (a palette's context AND a slot's own filter) on every adapter:
it matches exactly what matches each part, also for list fields, where intersecting the
values would be wrong."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.store_factory import (
    Dataset,
    make_dataset,
    new_client,
    open_test_store,
    oracle_matches,
)
from timbre.store import SearchFilter, VectorStore
from timbre.store.filters import AllOf, conjoin

pytestmark = [
    pytest.mark.filterwarnings("ignore:Payload indexes have no effect"),
    pytest.mark.filterwarnings("ignore:Local mode performs exact"),
]


@pytest.fixture(scope="module")
def data() -> Dataset:
    return make_dataset(150, seed=5)


@pytest.fixture(scope="module", params=["edge", "memory"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, data: Dataset
) -> Iterator[VectorStore]:
    client = new_client(request.param) if request.param != "edge" else None
    folder = tmp_path_factory.mktemp("store")
    opened = open_test_store(request.param, folder, client=client, upsert_batch=64)
    opened.live().upsert(data.points)
    yield opened
    opened.close()


def test_conjoin_drops_nothing_and_keeps_what_stands_alone() -> None:
    context = SearchFilter(genre="techno", bpm_min=120, bpm_max=128)
    assert conjoin(None, SearchFilter()) is None
    assert conjoin(context, None) is context
    both = conjoin(context, SearchFilter(kind="loop"))
    assert isinstance(both, AllOf)
    assert len(both.conditions()) == len(context.conditions()) + 1


@pytest.mark.parametrize(
    ("context", "own"),
    [
        (SearchFilter(kind="loop", bpm_min=100), SearchFilter(bpm_max=140)),
        # any-of A and any-of B on a list field is not any-of (A ∩ B) = nothing
        (SearchFilter(tags=["dark", "punchy"]), SearchFilter(tags=["warm", "analog"])),
        # the same field twice: both must hold
        (SearchFilter(genre=["techno", "house"]), SearchFilter(genre=["house", "ambient"])),
    ],
)
def test_a_conjunction_matches_what_every_part_matches(
    store: VectorStore, data: Dataset, context: SearchFilter, own: SearchFilter
) -> None:
    both = conjoin(context, own)
    assert both is not None
    rows = [
        i
        for i, p in enumerate(data.payloads)
        if oracle_matches(p, context) and oracle_matches(p, own)
    ]
    assert rows, "the case must select something"
    assert store.live().count(both) == len(rows)
    query = data.vectors[0]
    scores = data.vectors @ query
    wanted = sorted(rows, key=lambda r: -scores[r])[:10]
    hits = store.live().search(query, top_k=10, filter=both, exact=True)
    assert [h.id for h in hits] == [data.ids[r] for r in wanted]
