"""The project context on every search route, the batch and browsing, through TestClient on
the shared synthetic library (4 packs with loops at 128, 122, 88 and 174 BPM, keyed bass and
pad one-shots and bass loops, drums without a key).

What each hit's ``fit`` says is checked against :func:`timbre.fit.fit_of` on the hit's own
payload; ``sort: "fit"`` and ``only_fitting`` against the same search without them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ingest.synthetic import Library
from tests.support.api_fixtures import copy_of, ok, opened, problem
from timbre.fit import ProjectContext, fit_of
from timbre.settings import load_settings

PROJECT = {"bpm": 124, "key": "Am"}
EVERYTHING = 44  # the library's samples: 4 packs x (9 one-shots + 2 loops)


def text(client: TestClient, **body: Any) -> dict[str, Any]:
    return ok(client.post("/v1/search/text", json={"query": "bass loop", **body}))


def expected_fit(hit: dict[str, Any], bpm: float | None, key: str | None, tol: float = 8.0) -> Any:
    return fit_of(ProjectContext.of(bpm, key, tol), hit).as_dict()


def without_url(fit: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fit.items() if k != "audio_url"}


def test_every_hit_says_how_it_fits_the_project(client: TestClient) -> None:
    body = text(client, top_k=EVERYTHING, context=PROJECT)
    assert len(body["hits"]) == EVERYTHING
    assert body["query"]["context"] == {
        "bpm": 124.0,
        "key": "Am",
        "tolerance_pct": 8.0,  # the settings' default (fit.tempo_tolerance_pct)
        "sort": "score",
        "only_fitting": False,
    }
    for hit in body["hits"]:
        assert without_url(hit["fit"]) == expected_fit(hit, 124, "Am")
    fits = {h["fit"]["fits"] for h in body["hits"]}
    assert fits == {True, False}  # the library holds both: the test can tell them apart
    # a 122 BPM loop stretches by +1.64 %, a 174 BPM one by -28.7 %
    by_bpm = {h["bpm"]: h["fit"] for h in body["hits"] if h["kind"] == "loop"}
    assert by_bpm[122.0]["stretch_pct"] == pytest.approx(1.64, abs=0.01) and by_bpm[122.0]["fits"]
    assert by_bpm[174.0]["stretch_pct"] == pytest.approx(-28.74, abs=0.01)
    assert not by_bpm[174.0]["fits"]
    # the order is the engine's: a context alone changes no ranking
    plain = text(client, top_k=EVERYTHING)
    assert [h["id"] for h in body["hits"]] == [h["id"] for h in plain["hits"]]
    assert all(h["fit"] is None for h in plain["hits"]) and "context" not in plain["query"]


def test_the_matched_audio_url_is_given_only_when_something_needs_matching(
    client: TestClient,
) -> None:
    hits = text(client, top_k=EVERYTHING, context=PROJECT)["hits"]
    for hit in hits:
        fit, plain = hit["fit"], hit["audio_url"]
        stretch, semitones = fit["stretch_pct"], fit["semitones"]
        if stretch:
            assert fit["audio_url"] == f"{plain}?bpm=124&semitones={semitones or 0}"
        elif semitones:
            assert fit["audio_url"] == f"{plain}?semitones={semitones}"
        else:
            assert fit["audio_url"] is None
    drums = [h for h in hits if h["kind"] == "one_shot" and h["key"] is None]
    assert drums and all(h["fit"]["audio_url"] is None and h["fit"]["fits"] for h in drums)
    assert any(h["fit"]["stretch_pct"] for h in hits) and any(h["fit"]["semitones"] for h in hits)


def test_sort_by_fit_puts_fitting_hits_first_each_group_by_score(client: TestClient) -> None:
    plain = text(client, top_k=EVERYTHING, context=PROJECT)["hits"]
    ranked = text(client, top_k=EVERYTHING, context={**PROJECT, "sort": "fit"})["hits"]
    assert sorted(h["id"] for h in ranked) == sorted(h["id"] for h in plain)
    flags = [h["fit"]["fits"] for h in ranked]
    assert flags == sorted(flags, reverse=True)  # every fitting hit before every other
    for group in (True, False):
        assert [h["id"] for h in ranked if h["fit"]["fits"] is group] == [
            h["id"] for h in plain if h["fit"]["fits"] is group
        ]
    # the engine's first hit did not fit, or the test shows nothing
    assert not all(a["id"] == b["id"] for a, b in zip(plain, ranked, strict=True))


def test_pages_of_a_fit_ranking_add_up_to_the_whole(client: TestClient) -> None:
    context = {**PROJECT, "sort": "fit"}
    whole = [h["id"] for h in text(client, top_k=30, context=context)["hits"]]
    paged = [
        h["id"]
        for offset in range(0, 30, 7)
        for h in text(client, top_k=min(7, 30 - offset), offset=offset, context=context)["hits"]
    ]
    assert paged == whole


def test_only_fitting_keeps_the_fitting_hits_and_counts_them(client: TestClient) -> None:
    every = text(client, top_k=EVERYTHING, context=PROJECT)["hits"]
    fitting = [h["id"] for h in every if h["fit"]["fits"]]
    body = text(client, top_k=EVERYTHING, context={**PROJECT, "only_fitting": True})
    assert [h["id"] for h in body["hits"]] == fitting
    assert body["total"] == len(fitting) < EVERYTHING
    page = text(client, top_k=3, offset=2, context={**PROJECT, "only_fitting": True})
    assert [h["id"] for h in page["hits"]] == fitting[2:5] and page["total"] == len(fitting)


def test_only_fitting_may_empty_a_search_which_is_no_error(client: TestClient) -> None:
    # no drum loop is within 8 % of 300 BPM, at any multiple (174 x 2 = 348, 128 x 2 = 256)
    body = text(
        client,
        filter={"kind": "loop", "instrument": "drums"},
        context={"bpm": 300, "only_fitting": True},
    )
    assert body["hits"] == [] and body["total"] == 0


def test_half_and_double_time_fit(client: TestClient) -> None:
    hits = text(client, top_k=EVERYTHING, context={"bpm": 61}, filter={"kind": "loop"})["hits"]
    by_bpm = {h["bpm"]: h["fit"] for h in hits}
    assert by_bpm[122.0] | {"audio_url": None} == {
        "fits": True,
        "stretch_pct": 0.0,
        "tempo_multiple": 0.5,
        "key_relation": None,
        "semitones": None,
        "audio_url": None,
    }
    assert by_bpm[128.0]["tempo_multiple"] == 0.5 and by_bpm[128.0]["fits"]  # -4.7 %
    assert by_bpm[174.0]["tempo_multiple"] == 0.5 and not by_bpm[174.0]["fits"]  # -29.9 %


def test_a_tolerance_of_its_own_decides_what_fits(client: TestClient) -> None:
    strict = text(client, top_k=EVERYTHING, context={"bpm": 124, "tolerance_pct": 0})["hits"]
    loops = [h for h in strict if h["kind"] == "loop"]
    assert loops and not any(h["fit"]["fits"] for h in loops)  # none is at exactly 124
    loose = text(client, top_k=EVERYTHING, context={"bpm": 124, "tolerance_pct": 50})["hits"]
    assert all(h["fit"]["fits"] for h in loose)
    for hit in strict:
        assert without_url(hit["fit"]) == expected_fit(hit, 124, None, 0.0)


def test_the_default_tolerance_is_a_setting(
    library: Library, indexed_dir: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    settings = load_settings(
        data_dir=copy_of(indexed_dir, tmp_path),
        models={"bundle": tiny_bundle, "threads": 2},
        api={"library_roots": [str(library.root)]},
        fit={"tempo_tolerance_pct": 1.0},
    )
    with opened(settings) as own:
        body = text(own, top_k=EVERYTHING, context={"bpm": 124}, filter={"kind": "loop"})
    assert body["query"]["context"]["tolerance_pct"] == 1.0
    by_bpm = {h["bpm"]: h["fit"]["fits"] for h in body["hits"]}
    assert by_bpm[122.0] is False  # +1.6 %: fits at 8 %, not at 1 %
    for hit in body["hits"]:
        assert without_url(hit["fit"]) == expected_fit(hit, 124, None, 1.0)


def test_audio_and_hybrid_searches_take_a_context(client: TestClient) -> None:
    ref = text(client, top_k=1)["hits"][0]["id"]
    context = {"key": "C", "sort": "fit"}
    for route, body in (
        ("/v1/search/audio", {"id": ref}),
        ("/v1/search/hybrid", {"id": ref, "query": "pad", "alpha": 0.3}),
    ):
        found = ok(client.post(route, json={**body, "top_k": 20, "context": context}))
        hits = found["hits"]
        assert hits and found["query"]["context"]["key"] == "C"
        for hit in hits:
            assert without_url(hit["fit"]) == expected_fit(hit, None, "C")
        flags = [h["fit"]["fits"] for h in hits]
        assert flags == sorted(flags, reverse=True), route


@pytest.mark.parametrize("route", ["/v1/search/audio/upload", "/v1/search/hybrid/upload"])
def test_uploads_take_a_context_as_a_json_form_field(
    client: TestClient, library: Library, route: str
) -> None:
    path = next(p for p in library.files if p.suffix == ".wav")
    data = {"top_k": "10", "context": json.dumps({**PROJECT, "only_fitting": True})}
    if route.startswith("/v1/search/hybrid"):
        data["query"] = "bass"
    found = ok(client.post(route, files={"file": (path.name, path.read_bytes())}, data=data))
    assert found["query"]["context"]["only_fitting"] is True
    assert all(h["fit"]["fits"] for h in found["hits"])
    for hit in found["hits"]:
        assert without_url(hit["fit"]) == expected_fit(hit, 124, "Am")
    bad = {**data, "context": json.dumps({"bpm": 0})}
    refused = problem(
        client.post(route, files={"file": (path.name, path.read_bytes())}, data=bad),
        422,
        "validation_error",
    )
    assert "context.bpm" in refused["detail"]
    garbled = {**data, "context": "{bpm: 124"}
    response = client.post(route, files={"file": (path.name, path.read_bytes())}, data=garbled)
    assert response.status_code == 400 and "context" in response.json()["detail"]


BAD_CONTEXTS: list[tuple[Any, str]] = [
    ({"bpm": 0}, "context.bpm"),
    ({"bpm": -120}, "context.bpm"),
    ({"bpm": 1000}, "context.bpm"),
    ({"bpm": 1e300}, "context.bpm"),
    ({"bpm": "NaN"}, "context.bpm"),
    ({"bpm": "124"}, "context.bpm"),
    ({"bpm": True}, "context.bpm"),
    ({"key": "H minor"}, "context.key"),
    ({"key": "Am", "tolerance_pct": -1}, "context.tolerance_pct"),
    ({"key": "Am", "tolerance_pct": 101}, "context.tolerance_pct"),
    ({"key": "Am", "sort": "random"}, "context.sort"),
    ({"key": "Am", "only_fitting": "yes"}, "context.only_fitting"),
    ({"key": "Am", "mood": "dark"}, "context.mood"),
    ({}, "needs a bpm, a key or both"),
    ({"sort": "fit"}, "needs a bpm, a key or both"),
]


@pytest.mark.parametrize(("context", "named"), BAD_CONTEXTS)
def test_a_bad_context_is_refused_with_its_reason(
    client: TestClient, context: Any, named: str
) -> None:
    for route, body in (
        ("/v1/search/text", {"query": "kick"}),
        ("/v1/search/hybrid", {"query": "kick", "path": "/nowhere.wav"}),
    ):
        found = problem(
            client.post(route, json={**body, "context": context}), 422, "validation_error"
        )
        assert named in found["detail"], found["detail"]


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity"])
def test_a_raw_json_nan_bpm_is_refused(client: TestClient, raw: str) -> None:
    body = '{"query": "kick", "context": {"bpm": ' + raw + "}}"
    response = client.post(
        "/v1/search/text", content=body, headers={"content-type": "application/json"}
    )
    found = problem(response, 422, "validation_error")
    assert "context.bpm" in found["detail"] and "finite" in found["detail"]


# -- batch: a single bpm and key are the project's; ranges and lists still filter -----------


def batch(client: TestClient, context: Any, **slot: Any) -> dict[str, Any]:
    queries = [{"slot": "bass", "query": "bass", "top_k": 12, **slot}]
    return ok(client.post("/v1/search/batch", json={"queries": queries, "context": context}))


def test_a_batch_context_with_one_tempo_and_key_is_the_project(client: TestClient) -> None:
    [plain] = batch(client, {"genre": ["techno", "house", "hip hop", "drum and bass"]})["results"]
    [fitted] = batch(client, {"genre": ["techno", "house", "hip hop", "drum and bass"], **PROJECT})[
        "results"
    ]
    # not a filter: the same samples come back (one-shots without a tempo, loops at 88 BPM)
    assert sorted(h["id"] for h in fitted["hits"]) == sorted(h["id"] for h in plain["hits"])
    for hit in fitted["hits"]:
        assert without_url(hit["fit"]) == expected_fit(hit, 124, "Am")
    flags = [h["fit"]["fits"] for h in fitted["hits"]]
    assert flags == sorted(flags, reverse=True) and set(flags) == {True, False}
    assert any("project bpm 124, Am" in n for n in fitted["notes"]), fitted["notes"]
    assert all(h["fit"] is None for h in plain["hits"])


def test_a_batch_context_range_or_key_list_still_filters(client: TestClient) -> None:
    [ranged] = batch(client, {"bpm": "120-130"}, filter={"kind": "loop"})["results"]
    assert ranged["hits"] and all(120 <= h["bpm"] <= 130 for h in ranged["hits"])
    assert all(h["fit"] is None for h in ranged["hits"])
    [keyed] = batch(client, {"key": ["C"]})["results"]  # the bass loops are in C
    assert keyed["hits"] and all(h["key"] == "C" for h in keyed["hits"])
    assert all(h["fit"] is None for h in keyed["hits"])
    # a range and a project key together: the range filters, the key only ranks
    [both] = batch(client, {"bpm": "120-130", "key": "F#m"}, filter={"kind": "loop"})["results"]
    assert both["hits"] and all(120 <= h["bpm"] <= 130 for h in both["hits"])
    assert {h["key"] for h in both["hits"]} == {"C"}  # the bass loops: F#m filtered none out
    for hit in both["hits"]:
        assert without_url(hit["fit"]) == expected_fit(hit, None, "F#m")


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"bpm": 0}, "context.bpm"),
        ({"bpm": 1000}, "context.bpm"),
        ({"key": "H"}, "context.key"),
        ({"key": ["Am", "H"]}, "context.key"),
    ],
)
def test_a_bad_batch_context_is_refused(client: TestClient, context: Any, named: str) -> None:
    queries = [{"query": "kick"}]
    response = client.post("/v1/search/batch", json={"queries": queries, "context": context})
    assert named in problem(response, 422, "validation_error")["detail"]


def test_a_raw_nan_in_a_batch_context_is_refused(client: TestClient) -> None:
    body = '{"queries": [{"query": "kick"}], "context": {"bpm": NaN}}'
    response = client.post(
        "/v1/search/batch", content=body, headers={"content-type": "application/json"}
    )
    assert "context.bpm" in problem(response, 422, "validation_error")["detail"]


# -- browsing -------------------------------------------------------------------------------


def browse(client: TestClient, query: str = "", **body: Any) -> dict[str, Any]:
    return ok(client.post(f"/v1/browse{query}", json={"top_k": EVERYTHING, **body}))


def test_browsing_takes_a_context_in_its_query(client: TestClient) -> None:
    plain = browse(client)["hits"]
    by_query = browse(client, "?bpm=124&key=Am&sort=fit")
    assert by_query["query"]["context"]["sort"] == "fit"
    hits = by_query["hits"]
    assert sorted(h["id"] for h in hits) == sorted(h["id"] for h in plain)
    for hit in hits:
        assert without_url(hit["fit"]) == expected_fit(hit, 124, "Am")
    flags = [h["fit"]["fits"] for h in hits]
    assert flags == sorted(flags, reverse=True) and set(flags) == {True, False}
    for group in (True, False):  # each group in path order, as browsing lists
        paths = [h["path"] for h in hits if h["fit"]["fits"] is group]
        assert paths == [h["path"] for h in plain if h["path"] in set(paths)]
    unsorted = browse(client, "?bpm=124")["hits"]
    assert [h["id"] for h in unsorted] == [h["id"] for h in plain]
    assert all(h["fit"] is not None for h in unsorted)


def test_browsing_only_fitting_counts_exactly(client: TestClient) -> None:
    every = browse(client, "?key=Am")["hits"]
    fitting = [h["id"] for h in every if h["fit"]["fits"]]
    page = ok(client.post("/v1/browse?key=Am&only_fitting=true", json={"top_k": 2}))
    assert page["total"] == len(fitting) and [h["id"] for h in page["hits"]] == fitting[:2]
    empty = browse(client, "?bpm=300&only_fitting=true", filter={"kind": "loop"})
    assert empty["hits"] == [] and empty["total"] == 0


@pytest.mark.parametrize(
    "query",
    [
        "?bpm=0",
        "?bpm=-4",
        "?bpm=NaN",
        "?bpm=inf",
        "?bpm=1000",
        "?bpm=fast",
        "?key=H",
        "?bpm=124&sort=best",
        "?bpm=124&only_fitting=maybe",
    ],
)
def test_browsing_refuses_a_bad_context(client: TestClient, query: str) -> None:
    problem(client.post(f"/v1/browse{query}", json={}), 422, "validation_error")


def test_browsing_sort_without_a_project_is_no_project(client: TestClient) -> None:
    plain = browse(client)
    for query in ("?sort=fit", "?only_fitting=true"):
        listed = browse(client, query)
        assert [h["id"] for h in listed["hits"]] == [h["id"] for h in plain["hits"]]
        assert all(h["fit"] is None for h in listed["hits"]) and "context" not in listed["query"]


def test_browsing_takes_no_context_in_its_body(client: TestClient) -> None:
    response = client.post("/v1/browse", json={"context": {"key": "Am"}})
    assert "context" in problem(response, 422, "validation_error")["detail"]


def test_recommend_takes_a_context(client: TestClient) -> None:
    seeds = text(client, top_k=2)["hits"]
    body = {"positive": [seeds[0]["id"]], "negative": [seeds[1]["id"]], "top_k": EVERYTHING}
    plain = ok(client.post("/v1/search/recommend", json=body))["hits"]
    fitted = ok(client.post("/v1/search/recommend", json={**body, "context": PROJECT}))
    assert [h["id"] for h in fitted["hits"]] == [h["id"] for h in plain]
    for hit in fitted["hits"]:
        assert without_url(hit["fit"]) == expected_fit(hit, 124, "Am")
    assert fitted["query"]["context"]["bpm"] == 124.0
    only = ok(
        client.post(
            "/v1/search/recommend", json={**body, "context": {**PROJECT, "only_fitting": True}}
        )
    )
    kept = [h["id"] for h in plain if expected_fit(h, 124, "Am")["fits"]]
    assert [h["id"] for h in only["hits"]] == kept and only["total"] == len(kept)
    assert {seeds[0]["id"], seeds[1]["id"]}.isdisjoint(h["id"] for h in only["hits"])
    refused = client.post("/v1/search/recommend", json={**body, "context": {"bpm": 0}})
    assert refused.status_code == 422 and "context" in refused.text
