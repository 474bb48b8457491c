"""Point ids, payloads, the filter model and the collection schema (no store needed)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.support.store_factory import model_info
from timbre.errors import ConfigError, InvalidPointError
from timbre.store import SearchFilter, build_payload, load_schema, point_id
from timbre.store.facets import FACET_FIELDS
from timbre.store.filters import MatchAny, Range
from timbre.store.payload import (
    DISPLAY_FIELDS,
    NORMALISED_FIELDS,
    PAYLOAD_FIELDS,
    POINT_ID_NAMESPACE,
    ancestor_dirs,
    normalised_companions,
    normalize_dir,
    with_derived,
    with_dirs,
)
from timbre.store.schema import SCHEMA_FILE, generation_name, parse_generation_name

SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def test_point_id_is_uuid5_of_the_content_hash() -> None:
    pid = point_id(SHA)
    assert pid == str(uuid.uuid5(POINT_ID_NAMESPACE, SHA))
    assert uuid.UUID(pid).version == 5
    assert point_id(SHA.upper()) == pid  # hex case does not matter


def test_point_id_is_stable_across_releases() -> None:
    # Pinned: changing the namespace would orphan every stored point.
    assert str(POINT_ID_NAMESPACE) == "81e78eb0-df08-4e75-b67c-99332a4fdcb1"
    assert point_id("0" * 64) == str(
        uuid.uuid5(uuid.UUID("81e78eb0-df08-4e75-b67c-99332a4fdcb1"), "0" * 64)
    )


@pytest.mark.parametrize("bad", ["", "xyz", "0" * 63, "g" * 64])
def test_point_id_refuses_what_is_not_a_sha256(bad: str) -> None:
    with pytest.raises(InvalidPointError):
        point_id(bad)


def test_build_payload_holds_every_contract_field() -> None:
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    payload = build_payload(
        {"genre": "techno", "bpm": 128.0, "kind": "loop", "tags": ["dark"]},
        content_sha256=SHA.upper(),
        paths=["Packs/A/loop.wav", "Copies/loop.wav", "Packs/A/loop.wav"],
        model=model_info(),
        ingested_at=when,
    )
    assert set(payload) == set(PAYLOAD_FIELDS)
    assert set(DISPLAY_FIELDS) <= set(payload)
    assert payload["path"] == "Packs/A/loop.wav"
    assert payload["paths"] == ["Packs/A/loop.wav", "Copies/loop.wav"]
    assert payload["content_sha256"] == SHA
    assert payload["model"] == {
        "family": "clamp3",
        "mert": model_info().mert,
        "clamp3": model_info().clamp3,
        "xlmr": model_info().xlmr,
    }
    assert payload["pipeline_version"] == model_info().pipeline_version
    assert payload["ingested_at"] == "2025-01-02T03:04:05+00:00"
    assert payload["instrument"] is None and payload["key"] is None


@pytest.mark.parametrize(
    ("descriptive", "paths", "message"),
    [
        ({"genere": "techno"}, ["a.wav"], "unknown payload fields"),
        ({"kind": "hit"}, ["a.wav"], "kind must be"),
        ({}, [], "no path"),
    ],
)
def test_build_payload_refuses_broken_input(
    descriptive: dict[str, object], paths: list[str], message: str
) -> None:
    with pytest.raises(InvalidPointError, match=message):
        build_payload(descriptive, content_sha256=SHA, paths=paths, model=model_info())


def test_dirs_are_every_ancestor_of_every_path() -> None:
    assert ancestor_dirs(["a/b/c.wav", "a/x/y.wav"]) == ["a", "a/b", "a/x"]
    assert ancestor_dirs(["/lib/Drums/k.wav"]) == ["/", "/lib", "/lib/Drums"]
    assert ancestor_dirs(["k.wav"]) == []
    assert ancestor_dirs(["./a//b/c.wav"]) == ["a", "a/b"]
    assert with_dirs({"path": "p/q.wav", "paths": ["p/q.wav", "r/s/q.wav"]})["dirs"] == [
        "p",
        "r",
        "r/s",
    ]
    assert normalize_dir("Drums/Kicks/") == "Drums/Kicks"


def test_filter_normalises_its_input() -> None:
    f = SearchFilter.model_validate(
        {
            "genre": "techno",
            "tags": ["a", "b"],
            "kind": [],
            "path_prefix": "Drums//Kicks/",
            "bpm_min": 120,
        }
    )
    assert f.genre == ("techno",) and f.tags == ("a", "b") and f.kind is None
    # keyword filters match the store's normalised companions
    assert f.conditions() == [
        MatchAny("genre_norm", ("techno",)),
        MatchAny("tags_norm", ("a", "b")),
        MatchAny("dirs", ("Drums/Kicks",)),
        Range("bpm", 120.0, None),
    ]
    assert SearchFilter().is_empty and not f.is_empty


def test_keyword_filters_ignore_case_and_fold_enharmonic_keys() -> None:
    f = SearchFilter(genre=("Deep  House", "deep house"), key=("Bbm", "A#m", "Bb minor"))
    assert f.conditions() == [
        MatchAny("genre_norm", ("deep house",)),
        MatchAny("key_norm", ("A#m",)),
    ]
    payload = with_derived(
        {"paths": ["a/b.wav"], "genre": "Deep House", "key": "Bbm", "tags": ["Dark", "dark "]}
    )
    assert payload["genre"] == "Deep House" and payload["key"] == "Bbm"  # display kept
    assert payload["genre_norm"] == "deep house" and payload["key_norm"] == "A#m"
    assert payload["tags_norm"] == ["dark"]
    assert normalised_companions({"category": None}) == {"category_norm": None}
    assert normalised_companions({"instrument": "Kick"}) == {"instrument_norm": "kick"}


@pytest.mark.parametrize(
    "bad",
    [
        {"bpm_min": 140, "bpm_max": 120},
        {"duration_min_s": 3, "duration_max_s": 1},
        {"kind": "hit"},
        {"bpm_min": -1},
        {"colour": "red"},
    ],
)
def test_filter_refuses_nonsense(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SearchFilter.model_validate(bad)


def test_filter_is_immutable_and_hashable() -> None:
    f = SearchFilter(genre=("house",))
    with pytest.raises(ValidationError):
        f.genre = ("techno",)  # type: ignore[misc]
    assert hash(f) == hash(SearchFilter(genre="house"))


def test_schema_indexes_every_filterable_field() -> None:
    schema = load_schema()
    assert schema.distance == "Cosine"
    filterable = {
        c.field
        for c in SearchFilter(
            genre="a",
            instrument="a",
            kind="loop",
            key="a",
            pack="a",
            tags="a",
            category="a",
            auto_tags="a",
            bpm_min=1,
            duration_min_s=1,
            path_prefix="a",
        ).conditions()
    }
    assert filterable <= set(schema.indexes)
    # every derived companion and facet field is indexed (facets need a keyword index)
    assert set(NORMALISED_FIELDS.values()) <= set(schema.indexes)
    assert all(schema.indexes[f] == "keyword" for f in FACET_FIELDS)
    assert schema.indexes["bpm"] == schema.indexes["duration_s"] == "float"


def test_schema_errors_name_the_field(tmp_path: Path) -> None:
    broken = tmp_path / "collection.yaml"
    broken.write_text(SCHEMA_FILE.read_text().replace("distance: Cosine", "distance: Euclid"))
    with pytest.raises(ConfigError, match=r"vectors\.distance"):
        load_schema(broken)


def test_collection_names_carry_the_model_key() -> None:
    schema = load_schema()
    key = schema.collection_key(model_info())
    assert key != schema.collection_key(model_info(revision="r2"))
    assert key != schema.collection_key(model_info(dim=64))
    assert key == schema.collection_key(model_info())
    name = generation_name("timbre", key, 7)
    assert parse_generation_name("timbre", name) == (key, 7)
    assert parse_generation_name("timbre", "timbre") is None
    assert parse_generation_name("other", name) is None
