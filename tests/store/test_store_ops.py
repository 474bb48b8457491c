"""Store operations on every adapter: upsert, delete, payload updates, retrieve, count, scroll."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.store_factory import (
    ADAPTER_PARAMS,
    Dataset,
    drop_collections,
    make_dataset,
    model_info,
    new_client,
    open_test_store,
    unique_collection,
    unit_vectors,
)
from timbre.errors import InvalidPointError
from timbre.store import DISPLAY_FIELDS, Point, SearchFilter, VectorStore, build_payload
from timbre.store.schema import parse_generation_name

pytestmark = [
    pytest.mark.filterwarnings("ignore:Payload indexes have no effect"),
    pytest.mark.filterwarnings("ignore:Local mode performs exact"),
]


@pytest.fixture(params=ADAPTER_PARAMS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    adapter = request.param
    client = new_client(adapter) if adapter != "edge" else None
    base = unique_collection() if adapter == "server" else "timbre"
    opened = open_test_store(adapter, tmp_path, client=client, collection=base, upsert_batch=64)
    yield opened
    opened.close()
    if adapter == "server":
        drop_collections(client, base)


@pytest.fixture(scope="module")
def data() -> Dataset:
    return make_dataset(300, seed=11)


def test_upsert_is_idempotent_by_content(store: VectorStore, data: Dataset) -> None:
    assert store.live().upsert(data.points) == 300
    assert store.live().upsert(data.points[:50]) == 50  # re-ingesting the same files
    assert store.live().count() == 300


def test_retrieve_keeps_the_order_asked_and_skips_unknown_ids(
    store: VectorStore, data: Dataset
) -> None:
    store.live().upsert(data.points)
    unknown = "00000000-0000-5000-8000-000000000000"
    asked = [data.ids[5], unknown, data.ids[2]]
    records = store.live().retrieve(asked)
    assert [r.id for r in records] == [data.ids[5], data.ids[2]]
    assert records[0].vector is None
    assert records[0].payload["content_sha256"] == data.payloads[5]["content_sha256"]
    assert records[0].payload["model"] == {
        "family": "clamp3",
        "mert": model_info().mert,
        "clamp3": model_info().clamp3,
        "xlmr": model_info().xlmr,
    }
    with_vectors = store.live().retrieve(asked, with_vectors=True)
    np.testing.assert_allclose(with_vectors[0].vector, data.vectors[5], atol=1e-6)
    stored = store.live().vector(data.ids[7])
    assert stored is not None
    np.testing.assert_allclose(stored, data.vectors[7], atol=1e-6)
    assert store.live().vector(unknown) is None


def test_delete_by_id(store: VectorStore, data: Dataset) -> None:
    store.live().upsert(data.points)
    store.live().delete([*data.ids[:10], "00000000-0000-5000-8000-000000000000"])
    assert store.live().count() == 290
    assert store.live().retrieve(data.ids[:10]) == []
    assert all(
        h.id not in data.ids[:10] for h in store.live().search(data.vectors[0], top_k=5, exact=True)
    )


def test_set_paths_moves_a_file_and_the_prefix_filter_follows(
    store: VectorStore, data: Dataset
) -> None:
    store.live().upsert(data.points)
    target = data.ids[3]
    assert store.live().set_paths(target, ["Moved/Here/kick.wav", "Moved/Copy/kick.wav"]) is True
    payload = store.live().retrieve([target])[0].payload
    assert payload["path"] == "Moved/Here/kick.wav"
    assert payload["paths"] == ["Moved/Here/kick.wav", "Moved/Copy/kick.wav"]
    assert payload["genre"] == data.payloads[3]["genre"]  # the rest of the payload is kept
    moved = store.live().search(
        data.vectors[3], top_k=5, filter=SearchFilter(path_prefix="Moved"), exact=True
    )
    assert [h.id for h in moved] == [target]
    assert store.live().count(SearchFilter(path_prefix=["Moved/Copy"])) == 1
    old_dir = data.payloads[3]["path"].rsplit("/", 1)[0]
    assert target not in {
        r.id for r in store.live().scroll(filter=SearchFilter(path_prefix=old_dir))
    }
    assert store.live().set_paths("00000000-0000-5000-8000-000000000000", ["x.wav"]) is False


def test_prefix_matches_whole_directory_names_only(store: VectorStore) -> None:
    info = model_info()
    vectors = unit_vectors(np.random.default_rng(0), 3)
    paths = ["Drums/Kick/a.wav", "Drums/Kicks/b.wav", "Drums/Kick.wav"]
    store.live().upsert(
        Point.of(v, build_payload({}, content_sha256=f"{i:064x}", paths=[p], model=info))
        for i, (v, p) in enumerate(zip(vectors, paths, strict=True))
    )
    found = {
        r.payload["path"]
        for r in store.live().scroll(filter=SearchFilter(path_prefix="Drums/Kick/"))
    }
    assert found == {"Drums/Kick/a.wav"}
    assert store.live().count(SearchFilter(path_prefix="Drums")) == 3


def test_scroll_returns_every_point_once_with_the_fields_asked(
    store: VectorStore, data: Dataset
) -> None:
    store.live().upsert(data.points)
    records = list(store.live().scroll(fields=["genre", "bpm"], batch_size=37))
    assert sorted(r.id for r in records) == sorted(data.ids)
    assert all(set(r.payload) <= {"genre", "bpm"} and r.vector is None for r in records)
    by_id = dict(zip(data.ids, data.vectors, strict=True))
    with_vectors = list(store.live().scroll(fields=[], with_vectors=True, batch_size=100))
    assert len(with_vectors) == 300
    for r in with_vectors[:20]:
        assert r.vector is not None
        np.testing.assert_allclose(r.vector, by_id[r.id], atol=1e-6)


def test_count_with_and_without_filters(store: VectorStore, data: Dataset) -> None:
    assert store.live().count() == 0
    store.live().upsert(data.points)
    loops = sum(p["kind"] == "loop" for p in data.payloads)
    assert store.live().count(SearchFilter(kind="loop")) == loops
    assert store.live().count(SearchFilter(kind=["loop", "one_shot"])) == 300
    assert store.live().count(SearchFilter()) == 300


def test_search_hits_carry_the_display_payload(store: VectorStore, data: Dataset) -> None:
    store.live().upsert(data.points)
    hit = store.live().search(data.vectors[9], top_k=1, exact=True)[0]
    assert hit.id == data.ids[9]
    assert hit.score == pytest.approx(1.0, abs=1e-5)
    assert set(hit.payload) == set(DISPLAY_FIELDS)
    assert hit.payload["path"] == data.payloads[9]["path"]


def test_write_marker_grows_with_every_write(store: VectorStore, data: Dataset) -> None:
    start = store.live().last_write()
    store.live().upsert(data.points[:100])  # 2 batches of 64
    after_upsert = store.live().last_write()
    assert after_upsert.seq == start.seq + 2 and after_upsert.at is not None
    store.live().delete([data.ids[0]])
    store.live().set_paths(data.ids[1], ["a/b.wav"])
    assert store.live().last_write().seq == after_upsert.seq + 2
    assert store.live().describe().last_write == store.live().last_write()
    store.live().search(data.vectors[0], top_k=3)
    store.live().count()
    assert store.live().last_write().seq == after_upsert.seq + 2  # reads write nothing


def test_describe_names_the_versioned_collection_and_models(store: VectorStore) -> None:
    info = store.live().describe()
    base = store.settings.collection
    assert parse_generation_name(base, info.name) == (store.schema.collection_key(model_info()), 1)
    assert info.dim == 48 and info.distance == "Cosine"
    assert info.audio_key == model_info().audio_key()
    assert info.published_at is not None
    assert store.needs_reindex is False


@pytest.mark.parametrize(
    ("vector", "message"),
    [
        (np.ones(48, dtype=np.float32), "L2-normalised"),
        (np.ones(47, dtype=np.float32) / np.sqrt(47), r"shape \(47,\)"),
        (np.full(48, np.nan, dtype=np.float32), "NaN"),
    ],
)
def test_bad_vectors_are_refused(
    store: VectorStore, data: Dataset, vector: np.ndarray, message: str
) -> None:
    point = data.points[0]
    with pytest.raises(InvalidPointError, match=message):
        store.live().upsert([Point(point.id, vector, point.payload)])
    with pytest.raises(InvalidPointError, match=message):
        store.live().search(vector, top_k=1)
    assert store.live().count() == 0


def test_point_id_must_derive_from_the_content_hash(store: VectorStore, data: Dataset) -> None:
    point = data.points[0]
    with pytest.raises(InvalidPointError, match="content_sha256"):
        store.live().upsert([Point(data.ids[1], point.vector, point.payload)])


def test_exclusive_range_bounds_are_exact(store: VectorStore, data: Dataset) -> None:
    """Qdrant's gt/lt travel to each adapter as they are: a point sitting exactly on an
    exclusive bound is out, one on an inclusive bound is in, and nothing is nudged."""
    store.live().upsert(data.points)
    bpms = sorted({p["bpm"] for p in data.payloads if p.get("bpm") is not None})
    low, high = bpms[10], bpms[20]

    def matched(**bounds: Any) -> set[float]:
        records = store.live().scroll(filter=SearchFilter(**bounds), fields=["bpm"])
        return {r.payload["bpm"] for r in records}

    inclusive = {b for b in bpms if low <= b <= high}
    assert matched(bpm_min=low, bpm_max=high) == inclusive
    assert matched(bpm_min=low, bpm_max=high, bpm_min_exclusive=True) == inclusive - {low}
    assert matched(bpm_min=low, bpm_max=high, bpm_max_exclusive=True) == inclusive - {high}
    both = {"bpm_min_exclusive": True, "bpm_max_exclusive": True}
    assert matched(bpm_min=low, bpm_max=high, **both) == inclusive - {low, high}
    assert matched(bpm_max=low, bpm_max_exclusive=True) == {b for b in bpms if b < low}
    with pytest.raises(ValueError, match="matches nothing"):
        SearchFilter(bpm_min=low, bpm_max=low, bpm_min_exclusive=True)
