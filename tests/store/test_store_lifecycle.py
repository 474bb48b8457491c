"""Opening checks (vector size, distance, models, schema) and re-indexing by generations."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.store_factory import (
    ADAPTER_PARAMS,
    drop_collections,
    make_dataset,
    model_info,
    new_client,
    open_test_store,
    unique_collection,
)
from timbre.errors import ModelMismatchError, SchemaMismatchError, StoreError
from timbre.store import VectorStore, load_schema
from timbre.store.schema import parse_generation_name

pytestmark = [
    pytest.mark.filterwarnings("ignore:Payload indexes have no effect"),
    pytest.mark.filterwarnings("ignore:Local mode performs exact"),
]


Opener = Callable[..., VectorStore]


@pytest.fixture(params=ADAPTER_PARAMS)
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens stores of one adapter over the same data (same directory or same "server")."""
    adapter = request.param
    client = new_client(adapter) if adapter != "edge" else None
    base = unique_collection() if adapter == "server" else "timbre"
    opened: list[VectorStore] = []

    def open_(info: Any = None, **kwargs: Any) -> VectorStore:
        store = open_test_store(adapter, tmp_path, info, client=client, collection=base, **kwargs)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()
    if adapter == "server":
        drop_collections(client, base)


def _reopen(opener: Opener, store: VectorStore, info: Any = None, **kwargs: Any) -> VectorStore:
    store.close()  # embedded: one owner at a time; server: harmless
    return opener(info, **kwargs)


def test_data_survives_reopening(opener: Opener) -> None:
    data = make_dataset(50, seed=1)
    store = opener()
    store.live().upsert(data.points)
    name, marker = store.live().describe().name, store.live().last_write()
    store = _reopen(opener, store)
    assert store.live().count() == 50
    assert store.live().describe().name == name
    assert store.live().last_write() == marker


def test_other_vector_size_fails_at_open_with_a_clear_message(opener: Opener) -> None:
    store = opener(model_info(dim=48))
    with pytest.raises(
        SchemaMismatchError, match=r"holds 48-d Cosine vectors.*produce 64-d"
    ) as err:
        _reopen(opener, store, model_info(dim=64))
    assert "Run `timbre ingest` on the library to re-index" in str(err.value)


def test_other_distance_fails_at_open(opener: Opener) -> None:
    store = opener()
    dot = load_schema().model_copy(
        update={"vectors": load_schema().vectors.model_copy(update={"distance": "Dot"})}
    )
    with pytest.raises(SchemaMismatchError, match=r"Cosine vectors.*asks for Dot"):
        _reopen(opener, store, schema=dot)


def test_other_models_fail_at_open(opener: Opener) -> None:
    store = opener(model_info(revision="r1"))
    with pytest.raises(ModelMismatchError, match="r2"):
        _reopen(opener, store, model_info(revision="r2"))


def test_newer_schema_version_asks_for_a_reindex(opener: Opener) -> None:
    store = opener()
    newer = load_schema().model_copy(update={"schema_version": 2})
    with pytest.raises(SchemaMismatchError, match=r"schema version 1.*version 2"):
        _reopen(opener, store, schema=newer)


def test_reindex_builds_a_new_generation_and_swaps_atomically(opener: Opener) -> None:
    old_data = make_dataset(40, seed=2, info=model_info(revision="r1"))
    store = opener(model_info(revision="r1"))
    store.live().upsert(old_data.points)
    old_name = store.live().describe().name

    new_info = model_info(revision="r2")
    store = _reopen(opener, store, new_info, reindex=True)
    assert store.needs_reindex
    generation = store.begin_generation()
    assert generation.name != old_name
    new_data = make_dataset(25, seed=3, info=new_info)
    generation.upsert(new_data.points[:10])

    # searches still see the complete old collection while the new one is half-built
    assert store.live().describe().name == old_name
    assert store.live().count() == 40
    assert store.live().search(old_data.vectors[0], top_k=1)[0].id == old_data.ids[0]

    generation.upsert(new_data.points[10:])
    assert generation.count() == 25
    generation.publish()
    assert store.live().describe().name == generation.name
    assert store.live().count() == 25
    assert not store.needs_reindex
    assert store.live().search(new_data.vectors[4], top_k=1)[0].id == new_data.ids[4]

    # the swap is persistent, and the new models now open the store without reindex
    store = _reopen(opener, store, new_info)
    assert store.live().describe().name == generation.name and store.live().count() == 25


def test_an_interrupted_reindex_resumes_its_generation(opener: Opener) -> None:
    store = opener(model_info(revision="r1"))
    new_info = model_info(revision="r2")
    store = _reopen(opener, store, new_info, reindex=True)
    data = make_dataset(30, seed=4, info=new_info)
    first = store.begin_generation()
    first.upsert(data.points[:12])
    name = first.name

    store = _reopen(opener, store, new_info, reindex=True)  # the job restarts
    resumed = store.begin_generation()
    assert resumed.name == name
    assert resumed.count() == 12
    resumed.upsert(data.points)
    resumed.publish()
    assert store.live().count() == 30


def test_abandon_deletes_an_unpublished_generation(opener: Opener) -> None:
    store = opener()
    live = store.live().describe().name
    generation = store.begin_generation()  # same models: a rebuild from scratch
    assert generation.name != live
    generation.upsert(make_dataset(5, seed=6).points)
    generation.abandon()
    rebuilt = store.begin_generation()
    assert rebuilt.name == generation.name and rebuilt.count() == 0  # recreated, empty
    rebuilt.publish()
    with pytest.raises(StoreError, match="is live"):
        rebuilt.abandon()
    assert store.live().describe().name == rebuilt.name


def test_old_generations_are_pruned_after_a_swap(opener: Opener) -> None:
    store = opener(keep_generations=2)
    base = store.live().describe().name.rsplit("-", 2)[0]
    names = [store.live().describe().name]
    for _ in range(3):
        generation = store.begin_generation()
        generation.upsert(make_dataset(5, seed=len(names)).points)
        generation.publish()
        names.append(generation.name)
    assert [parse_generation_name(base, n)[1] for n in names] == [1, 2, 3, 4]  # type: ignore[index]
    # the live one and the one before it remain (the adapter lists what exists)
    existing = store._collection_names()  # type: ignore[attr-defined]
    assert sorted(n for n in existing if parse_generation_name(base, n)) == names[-2:]


@pytest.mark.parametrize("on_disk", [True, False])
def test_the_embedded_shard_keeps_vectors_where_the_schema_says(
    tmp_path: Path, on_disk: bool
) -> None:
    schema = load_schema()
    schema = schema.model_copy(
        update={"vectors": schema.vectors.model_copy(update={"embedded_on_disk": on_disk})}
    )
    data = make_dataset(20)
    store = open_test_store("edge", tmp_path, schema=schema)
    store.live().upsert(data.points)
    store.close()
    # Qdrant Edge records each segment's vector storage: mapped files it does not load
    # (ChunkedMmap) or the same files held in RAM.
    kinds = {
        json.loads(p.read_text())["config"]["vector_data"][""]["storage_type"]
        for p in tmp_path.glob("**/segments/*/segment.json")
    }
    assert kinds == ({"ChunkedMmap"} if on_disk else {"InRamChunkedMmap"})
