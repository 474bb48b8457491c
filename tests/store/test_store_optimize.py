"""Compacting the embedded shard (``VectorStore.optimize``): what ingest jobs do when they finish.

Writes land in an appendable segment, whose payload indexes Qdrant Edge holds in RAM; the
optimiser rebuilds a segment past ``optimizers.embedded_indexing_threshold_kb`` as an immutable
one, with memory-mapped ("cold") payload indexes and no graph. The answers must not change:
every search, count and facet is checked against the brute-force oracle before and after, and
writes made after the compaction must be found like any others.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.support.store_factory import (
    make_dataset,
    open_test_store,
    oracle_matches,
    oracle_search,
    random_filter,
    unit_vectors,
)
from timbre.store import VectorStore
from timbre.store.schema import CollectionSchema, load_schema

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect")


def _schema(threshold_kb: int) -> CollectionSchema:
    schema = load_schema()
    optimizers = schema.optimizers.model_copy(
        update={"embedded_indexing_threshold_kb": threshold_kb}
    )
    return schema.model_copy(update={"optimizers": optimizers})


def _segments(data_dir: Path) -> list[dict]:
    """Each segment's recorded config and its payload index settings."""
    out = []
    for config in data_dir.glob("**/segments/*/segment.json"):
        indexes = config.parent / "payload_index" / "config.json"
        out.append(
            {
                "storage": json.loads(config.read_text())["config"]["vector_data"][""],
                "indexes": json.loads(indexes.read_text())["indexed_fields"]
                if indexes.is_file()
                else {},
            }
        )
    return out


def _answers(store: VectorStore, queries: np.ndarray, data) -> list:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    answers = []
    for q in queries:
        f = random_filter(rng, data)
        hits = store.live().search(q, top_k=7, filter=f)
        expected = oracle_search(data, q, 7, f)
        assert [h.id for h in hits] == [i for i, _ in expected]
        count = store.live().count(f)
        assert count == sum(oracle_matches(p, f) for p in data.payloads)
        answers.append(([h.id for h in hits], [round(h.score, 5) for h in hits], count))
    answers.append(store.live().facets(["genre", "instrument", "pack"], limit=20))
    return answers


def test_a_compacted_shard_answers_the_same_from_an_immutable_segment(tmp_path: Path) -> None:
    data = make_dataset(400, seed=3)
    queries = unit_vectors(np.random.default_rng(4), 12, data.vectors.shape[1])
    store = open_test_store("edge", tmp_path, schema=_schema(threshold_kb=1))
    try:
        store.live().upsert(data.points)
        before = _answers(store, queries, data)
        assert all(s["storage"]["storage_type"] == "ChunkedMmap" for s in _segments(tmp_path))

        assert store.optimize() is True
        assert _answers(store, queries, data) == before
        assert store.optimize() is False  # nothing new to compact
    finally:
        store.close()

    # The points now live in an immutable segment (plain mapped vectors, a graph of degree 0)
    # whose every payload index is memory-mapped.
    schema_fields = set(load_schema().indexes)
    immutable = [s for s in _segments(tmp_path) if s["storage"]["storage_type"] == "Mmap"]
    assert len(immutable) == 1
    assert immutable[0]["storage"]["index"]["options"]["m"] == 0
    assert set(immutable[0]["indexes"]) == schema_fields
    assert {v["memory"] for v in immutable[0]["indexes"].values()} == {"cold"}

    # Reopened, it answers the same; new writes land beside it and are found.
    store = open_test_store("edge", tmp_path, schema=_schema(threshold_kb=1))
    try:
        assert _answers(store, queries, data) == before
        more = make_dataset(30, seed=9)
        store.live().upsert(more.points)
        store.live().delete([data.points[0].id])
        assert store.live().count() == len(data.points) + len(more.points) - 1
        for point in more.points[:5]:
            assert store.live().search(point.vector, top_k=1)[0].id == point.id
        assert store.live().retrieve([data.points[0].id]) == []
    finally:
        store.close()


def test_a_store_under_the_threshold_is_left_as_it_is(tmp_path: Path) -> None:
    store = open_test_store("edge", tmp_path)  # the shipped 10 MB threshold
    try:
        store.live().upsert(make_dataset(50, seed=1).points)
        assert store.optimize() is False
    finally:
        store.close()
    assert all(s["storage"]["storage_type"] == "ChunkedMmap" for s in _segments(tmp_path))


def test_a_server_optimises_by_itself(tmp_path: Path) -> None:
    store = open_test_store("memory", tmp_path)
    try:
        store.live().upsert(make_dataset(20, seed=2).points)
        assert store.optimize() is False
        assert store.live().count() == 20
    finally:
        store.close()


def test_timbre_store_optimize_reports_what_it_did(tiny_bundle: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from timbre.cli import app
    from timbre.embedding.embedder import describe_models
    from timbre.settings import load_settings
    from timbre.store import open_store

    settings = load_settings(data_dir=tmp_path, models={"bundle": str(tiny_bundle)})
    info = describe_models(settings.models)
    store = open_store(settings, info)
    try:
        store.live().upsert(make_dataset(10, seed=4, info=info).points)
        name = store.live().name
    finally:
        store.close()
    env = {"TIMBRE_DATA_DIR": str(tmp_path), "TIMBRE_MODELS__BUNDLE": str(tiny_bundle)}
    result = CliRunner().invoke(app, ["store", "optimize"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["collection"] == name and report["changed"] is False  # 10 points: too few
