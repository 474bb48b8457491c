"""Facets, batched searches, label updates and the derived-field backfill, on both adapters.

Each is checked against a numpy/Counter oracle written independently of the store's
translation (plain case folding and key spelling, no companion fields).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.store_factory import (
    Dataset,
    drop_collections,
    make_dataset,
    new_client,
    open_test_store,
    oracle_fold,
    oracle_matches,
    oracle_search,
    random_filter,
    server_url,
    unique_collection,
    unit_vectors,
)
from timbre.errors import InvalidPointError
from timbre.store import SearchFilter, VectorStore
from timbre.store.facets import FACET_FIELDS
from timbre.store.payload import DERIVED_VERSION, NORMALISED_FIELDS

pytestmark = [
    pytest.mark.congruence,
    pytest.mark.filterwarnings("ignore:Payload indexes have no effect"),
    pytest.mark.filterwarnings("ignore:Local mode performs exact"),
]

N_POINTS = 600


@pytest.fixture(scope="module")
def data() -> Dataset:
    return make_dataset(N_POINTS, seed=11)


ADAPTERS = [
    pytest.param("edge"),
    pytest.param("memory"),
    pytest.param(
        "server",
        marks=[
            pytest.mark.integration,
            pytest.mark.skipif(not server_url(), reason="TIMBRE_QDRANT__URL is not set"),
        ],
    ),
]


@pytest.fixture(scope="module", params=ADAPTERS)
def store(
    request: pytest.FixtureRequest, data: Dataset, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VectorStore]:
    adapter = request.param
    client = new_client(adapter) if adapter != "edge" else None
    base = unique_collection() if adapter == "server" else "timbre"
    opened = open_test_store(
        adapter, tmp_path_factory.mktemp(f"facts-{adapter}"), client=client, collection=base
    )
    try:
        opened.live().upsert(data.points)
        yield opened
    finally:
        opened.close()
        if adapter == "server":
            drop_collections(client, base)


def oracle_facet(data: Dataset, field: str, f: SearchFilter | None) -> list[tuple[str, int]]:
    """(display value, points) most frequent first; display = the commonest spelling."""
    counts: Counter[str] = Counter()
    spellings: dict[str, Counter[str]] = {}
    for payload in data.payloads:
        if f is not None and not oracle_matches(payload, f):
            continue
        value = payload.get(field)
        values = value if isinstance(value, list) else [value]
        present = [v for v in values if v]
        for norm in {oracle_fold(field, v) for v in present}:
            counts[norm] += 1
        for spelling in set(present):
            spellings.setdefault(oracle_fold(field, spelling), Counter())[spelling] += 1
    rows = []
    for norm, count in counts.items():
        best = min(spellings[norm].items(), key=lambda kv: (-kv[1], kv[0]))[0]
        rows.append((best, count))
    return sorted(rows, key=lambda r: (-r[1], r[0]))


def test_facets_count_every_value_like_the_oracle(store: VectorStore, data: Dataset) -> None:
    rng = np.random.default_rng(1)
    filters: list[SearchFilter | None] = [None, *(random_filter(rng, data) for _ in range(8))]
    for f in filters:
        got = store.live().facets(FACET_FIELDS, filter=f, limit=200)
        for field in FACET_FIELDS:
            want = oracle_facet(data, field, f)
            assert [(v.value, v.count) for v in got[field]] == want, (field, f)
    # case variants really are one value, shown in the commonest spelling
    genres = {v.match: v for v in store.live().facets(["genre"], limit=200)["genre"]}
    assert "techno" in genres and genres["techno"].value == "techno"


def test_facet_limit_keeps_the_most_frequent(store: VectorStore, data: Dataset) -> None:
    got = store.live().facets(["tags", "pack"], limit=3)
    for field in ("tags", "pack"):
        want = oracle_facet(data, field, None)
        assert [v.count for v in got[field]] == [c for _, c in want[:3]]


def test_stated_facts_only_by_their_source(store: VectorStore, data: Dataset) -> None:
    """A BPM a producer stated is told from one the audio estimated, in filters and facets."""
    stated = SearchFilter(bpm_source=("tags", "name"), kind=("loop",))
    want = {i for i, p in zip(data.ids, data.payloads, strict=True) if oracle_matches(p, stated)}
    got = {r.id for r in store.live().scroll(filter=stated)}
    assert got == want and got
    assert all(data.payloads[data.ids.index(i)]["bpm_source"] != "audio" for i in got)
    counts = {v.value: v.count for v in store.live().facets(["key_source"], limit=10)["key_source"]}
    assert set(counts) == {"tags", "name", "audio"}
    with pytest.raises(ValueError, match="fact source"):
        SearchFilter(key_source=("guess",))


def test_facets_refuse_unknown_fields(store: VectorStore) -> None:
    with pytest.raises(ValueError, match="cannot facet on 'path'"):
        store.live().facets(["path"], limit=5)


def test_batched_search_equals_single_searches_and_the_oracle(
    store: VectorStore, data: Dataset
) -> None:
    rng = np.random.default_rng(2)
    queries = unit_vectors(rng, 24)
    filters = [None if i % 3 == 0 else random_filter(rng, data) for i in range(24)]
    batched = store.live().search_batch(queries, top_k=7, filters=filters, fields=["genre"])
    for query, f, hits in zip(queries, filters, batched, strict=True):
        want = oracle_search(data, query, 7, f)
        assert [h.id for h in hits] == [i for i, _ in want]
        np.testing.assert_allclose([h.score for h in hits], [s for _, s in want], atol=1e-5)
        single = store.live().search(query, top_k=7, filter=f, exact=True)
        assert [h.id for h in single] == [h.id for h in hits]
    # a score threshold drops every hit below it, and only those
    own = data.vectors[:5]
    near = store.live().search_batch(own, top_k=5, filters=[None] * 5, score_threshold=0.999)
    assert [[h.id for h in hits] for hits in near] == [[i] for i in data.ids[:5]]


def test_label_updates_are_found_case_insensitively(
    store: VectorStore, data: Dataset, tmp_path: Path
) -> None:
    ids = data.ids[:3]
    before = {r.id: r.vector for r in store.live().retrieve(ids, with_vectors=True)}
    store.live().set_payloads(
        {i: {"category": "Riser", "auto_tags": ["Dark", "wide"]} for i in ids}
    )
    assert set(r.id for r in store.live().scroll(filter=SearchFilter(category="riser"))) == set(ids)
    assert {r.id for r in store.live().scroll(filter=SearchFilter(auto_tags="DARK"))} >= set(ids)
    after = {r.id: r.vector for r in store.live().retrieve(ids, with_vectors=True)}
    for i in ids:  # a payload update never touches the vector
        assert np.array_equal(before[i], after[i])
    with pytest.raises(InvalidPointError, match="category_norm"):
        store.live().set_payloads({ids[0]: {"category_norm": "x"}})


@pytest.mark.parametrize("adapter", ["edge", "memory"])
def test_an_older_collection_is_backfilled_in_place(adapter: str, tmp_path: Path) -> None:
    """A collection written before the companions existed gets them on open, no re-embedding."""
    data = make_dataset(150, seed=5)
    client = new_client(adapter) if adapter != "edge" else None
    first = open_test_store(adapter, tmp_path, client=client)
    with first.live()._use() as backend:
        # Write as an old release did: payloads without the normalised companions.
        backend.upsert(data.points)
        backend.write_meta({"derived_version": 1})
    probe = SearchFilter(genre=("TECHNO",))
    want = {i for i, p in zip(data.ids, data.payloads, strict=True) if oracle_matches(p, probe)}
    assert want and first.live().count(probe) == 0  # the old payloads have no companions yet
    if adapter == "edge":
        first.close()
    reopened = open_test_store(adapter, tmp_path, client=client)
    try:
        assert {r.id for r in reopened.live().scroll(filter=probe)} == want
        assert reopened.live().describe().name
        with reopened.live()._use() as backend:
            assert backend.read_meta()["derived_version"] == DERIVED_VERSION
        record = reopened.live().retrieve([data.ids[0]])[0]
        for field, companion in NORMALISED_FIELDS.items():
            if record.payload.get(field) is not None:
                assert record.payload[companion] is not None, companion
    finally:
        reopened.close()
