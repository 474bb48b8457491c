"""The duplicate report's groups on vectors crafted for it, in a real Qdrant Edge store: pairs
that chain below the threshold, velocity layers and round robins, and the names of Debian's
hydrogen drum kits.

Vectors lie on an arc of the plane of two axes: points ``k`` steps apart have cosine
``cos(k * step)``, so a run of samples each within the threshold of the next, whose ends are
not, is exact and needs no audio.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import pytest

from tests.support.api_fixtures import opened
from tests.support.store_factory import model_info, open_test_store
from timbre.cli.duplicates import LEGEND, _table
from timbre.embedding.embedder import describe_models
from timbre.embedding.info import ModelInfo
from timbre.search.duplicates import DuplicateReport, DuplicateRules, find_duplicates
from timbre.search.layers import layer_name
from timbre.settings import load_settings
from timbre.store import Point, VectorStore, open_store
from timbre.store.payload import build_payload

RULES = DuplicateRules(
    min_cosine=0.998,
    duration_tolerance_s=0.1,
    duration_tolerance_ratio=0.05,
    neighbours=16,
    batch=4,
)
DIM = model_info().dim
STEP = math.acos(0.999)  # neighbours on the arc at 0.999, two steps apart at 0.996


def arc(steps: float, axis: int = 0) -> np.ndarray:
    """A unit vector ``steps`` steps along the arc in the plane of axes ``axis`` and
    ``axis + 1`` (arcs on different axes are orthogonal: cosine 0)."""
    vector = np.zeros(DIM, dtype=np.float32)
    vector[axis], vector[axis + 1] = math.cos(steps * STEP), math.sin(steps * STEP)
    return vector


def point(path: str, vector: np.ndarray, model: ModelInfo | None = None, **facts: Any) -> Point:
    descriptive = {"duration_s": 1.0, "format": "wav", "sample_rate": 44100, **facts}
    sha = hashlib.sha256(path.encode()).hexdigest()
    payload = build_payload(
        descriptive, content_sha256=sha, paths=[path], model=model or model_info()
    )
    return Point.of(vector, payload)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[VectorStore]:
    opened = open_test_store("edge", tmp_path)
    try:
        yield opened
    finally:
        opened.close()


def report(store: VectorStore, points: list[Point]) -> DuplicateReport:
    store.live().upsert(points)
    return find_duplicates(store.live(), RULES)


def names(members: list[Any]) -> list[str]:
    return [m.path for m in members]


def test_a_chain_of_close_pairs_is_split_around_the_sample_kept(store: VectorStore) -> None:
    # a-b and b-c at 0.999, a-c at 0.996: a (the 48 kHz FLAC) is kept, so c cannot join it
    found = report(
        store,
        [
            point("Strums/a.flac", arc(0), format="flac", sample_rate=48000),
            point("Strums/b.wav", arc(1)),
            point("Strums/c.wav", arc(2)),
        ],
    )
    assert [names(g.members) for g in found.groups] == [["Strums/a.flac", "Strums/b.wav"]]
    assert found.groups[0].min_score == pytest.approx(0.999, abs=1e-6)
    assert found.duplicates == 1


def test_a_long_run_of_similar_chords_never_reports_a_member_below_the_threshold(
    store: VectorStore,
) -> None:
    # 12 strums, each 0.999 from the next: they all touch, the ends are at cos(11 steps) = 0.88
    strums = [point(f"Guitar/strum {n:02d} {chr(65 + n)}m.wav", arc(n)) for n in range(12)]
    found = report(store, strums)
    assert found.groups, "neighbours at 0.999 are duplicates"
    grouped = [m for g in found.groups for m in g.members]
    assert len(grouped) == len({m.id for m in grouped}), "a sample sits in one group"
    for group in found.groups:
        kept = next(m for m in group.members if m.id == group.keep)
        assert kept.score == 1.0 and group.members[0].id == group.keep
        assert group.min_score >= RULES.min_cosine, names(group.members)
        # and the figure is the true cosine with the one kept
        index = {p.payload["path"]: p.vector for p in strums}
        for m in group.members:
            assert m.score == pytest.approx(float(index[m.path] @ index[kept.path]), abs=1e-5)


def test_velocity_layers_and_round_robins_are_listed_apart(store: VectorStore) -> None:
    points = [
        point("Kit/Cowbell-Hard.wav", arc(0, axis=0)),
        point("Kit/Cowbell-Soft.wav", arc(0.1, axis=0)),
        point("Kit/Cowbell-Med.wav", arc(0.2, axis=0)),
        point("Backup/Cowbell-Hard.wav", arc(0.05, axis=0), format="flac"),
        point("Kit/Snare_rr1.wav", arc(0, axis=4)),
        point("Kit/Snare_rr2.wav", arc(0.1, axis=4)),
        point("Kit/Kick v1.wav", arc(0, axis=8)),
        point("Kit/Kick v127.wav", arc(0.1, axis=8)),
        point("Kit/hh_01.wav", arc(0, axis=12)),
        point("Kit/hh_02.wav", arc(0.1, axis=12)),
        # numbers glued to the word name different cymbals: a pair, not layers
        point("Kit/Crash16.wav", arc(0, axis=16)),
        point("Kit/Crash18.wav", arc(0.1, axis=16)),
        # the same layer word in another folder: a copy is still a copy
        point("Other/Snare_rr1.wav", arc(0.02, axis=4)),
    ]
    found = report(store, points)
    layer_sets = {(s.folder, s.sound): names(s.members) for s in found.layers}
    assert layer_sets == {
        ("Kit", "cowbell"): ["Kit/Cowbell-Hard.wav", "Kit/Cowbell-Med.wav", "Kit/Cowbell-Soft.wav"],
        ("Kit", "snare"): ["Kit/Snare_rr1.wav", "Kit/Snare_rr2.wav"],
        ("Kit", "kick"): ["Kit/Kick v1.wav", "Kit/Kick v127.wav"],
        ("Kit", "hh"): ["Kit/hh_01.wav", "Kit/hh_02.wav"],
    }
    groups = sorted(sorted(names(g.members)) for g in found.groups)
    # the hard cowbell's copy goes with the hard one, never with a softer layer; no group
    # holds two layers of one sound
    assert groups == [
        ["Backup/Cowbell-Hard.wav", "Kit/Cowbell-Hard.wav"],
        ["Kit/Crash16.wav", "Kit/Crash18.wav"],
        ["Kit/Snare_rr1.wav", "Other/Snare_rr1.wav"],
    ]
    body = found.as_dict()
    assert [len(s["members"]) for s in body["layers"]] == [3, 2, 2, 2]
    assert all(s["min_score"] >= 0.99 for s in body["layers"])


@pytest.mark.parametrize(
    ("a", "b", "layers"),
    [
        ("Cowbell-Hard.wav", "Cowbell-Soft.wav", True),
        ("PearlKick-Hardest.wav", "PearlKick-Softest.wav", True),
        ("CajonThumps-Med.wav", "CajonThumps-Hard.wav", True),
        ("Snare Loud.wav", "Snare Quiet.wav", True),
        ("Kick_v1.wav", "Kick_v127.wav", True),
        ("Kick vel3.wav", "Kick vel4.wav", True),
        ("Tom RR2.wav", "Tom RR3.wav", True),
        ("Tom_rr1.wav", "Tom_rr2.wav", True),
        ("BD_01.aiff", "BD_02.aiff", True),
        ("bassdrum-stereo-soft2.flac", "bassdrum-stereo-normal3.flac", True),
        ("Crash16.wav", "Crash18.wav", False),  # different cymbals
        ("Tom Hi.wav", "Tom Mid.wav", False),  # pitches, not strengths
        ("Kick.wav", "Snare.wav", False),
        ("Cowbell-Hard.wav", "Cowbell-Hard.wav", False),  # the same name: not another layer
        ("01.wav", "02.wav", False),  # nothing names a sound
    ],
)
def test_layer_names(a: str, b: str, layers: bool) -> None:
    assert layer_name(f"Kit/{a}").is_layer_of(layer_name(f"Kit/{b}")) is layers
    # another folder holds another instrument
    assert not layer_name(f"Kit/{a}").is_layer_of(layer_name(f"Other/{b}"))


HYDROGEN = Path("/usr/share/hydrogen/data/drumkits")
# Kits that map different articulations (rimshot and centre hit, closed and semi-open hat,
# crash and ride) as the velocity layers of one instrument: the names rightly differ there.
MIXED_ARTICULATIONS = {"ColomboAcousticDrumkit"}


@pytest.mark.skipif(not HYDROGEN.is_dir(), reason="Debian's hydrogen-drumkits is not installed")
def test_the_velocity_layers_of_the_hydrogen_kits_are_recognised_by_name() -> None:
    """Each kit's drumkit.xml lists which files are the layers of one instrument: the names of
    every such instrument must read as layers of one another."""
    checked = 0
    for manifest in sorted(HYDROGEN.glob("*/drumkit.xml")):
        if manifest.parent.name in MIXED_ARTICULATIONS:
            continue
        for instrument in ElementTree.parse(manifest).getroot().iter():
            if not instrument.tag.endswith("}instrument") and instrument.tag != "instrument":
                continue
            files = [e.text or "" for e in instrument.iter() if e.tag.endswith("filename")]
            read = [layer_name(str(manifest.parent / f)) for f in files]
            for x, y in itertools.combinations(read, 2):
                assert x.is_layer_of(y), (manifest.parent.name, files)
            checked += len(files) > 1
    assert checked >= 90  # 104 multi-layer instruments in Debian's 0.9.6 kits


def test_the_table_explains_its_figures_and_lists_layers_apart(store: VectorStore) -> None:
    found = report(
        store,
        [
            point("Kit/Cowbell-Hard.wav", arc(0)),
            point("Kit/Cowbell-Soft.wav", arc(0.1)),
            point("Backup/Cowbell-Hard.flac", arc(0.05), format="flac"),
        ],
    )
    lines = _table(found.as_dict()).splitlines()
    assert lines[0] == LEGEND  # what the figures mean comes first
    assert lines[1] == "group 1: 2 samples, lowest cosine with the kept 1.0000"
    assert lines[2].startswith("  keep 1.0000") and lines[2].endswith("Backup/Cowbell-Hard.flac")
    assert lines[4].startswith("1 sets of velocity layers or round robins")
    assert lines[5].startswith("  Kit: Cowbell-Hard.wav, Cowbell-Soft.wav (cosine >= 1.0000)")


def test_the_routes_list_layers_apart(tiny_bundle: Path, tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data", models={"bundle": tiny_bundle})
    info = describe_models(settings.models)
    points = [
        point("Kit/Cowbell-Hard.wav", arc(0), model=info),
        point("Kit/Cowbell-Soft.wav", arc(0.1), model=info),
        point("Backup/Cowbell-Hard.flac", arc(0.05), model=info, format="flac"),
    ]
    store = open_store(settings, info)
    try:
        store.live().upsert(points)
    finally:
        store.close()
    # the duplicate routes need the store, not the text model: no wait for readiness
    with opened(settings, wait_ready=False) as client:
        report = client.get("/v1/duplicates").json()
        item = client.get(f"/v1/items/{points[0].id}/duplicates").json()
    assert [[m["path"] for m in g["members"]] for g in report["groups"]] == [
        ["Backup/Cowbell-Hard.flac", "Kit/Cowbell-Hard.wav"]
    ]
    assert [
        (s["folder"], s["sound"], [m["path"] for m in s["members"]]) for s in report["layers"]
    ] == [("Kit", "cowbell", ["Kit/Cowbell-Hard.wav", "Kit/Cowbell-Soft.wav"])]
    # one sample's view: its copy is a duplicate, its softer layer is not
    assert [h["path"] for h in item["hits"]] == ["Backup/Cowbell-Hard.flac"]
    assert [h["path"] for h in item["layers"]] == ["Kit/Cowbell-Soft.wav"]
    assert item["keep"] == points[2].id  # both lossless and alike: the first path
