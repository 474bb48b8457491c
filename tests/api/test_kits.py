"""Kits through the HTTP API: create and fill, pads, swap, lock, and refusals (never a 5xx),
on the shared synthetic library (4 packs of 9 one-shots: kick, snare, hat, clap, bass, pad,
lead, pluck, riser; and 2 loops each: drums and bass at the pack's tempo)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.api_fixtures import first_hit, ok, problem


def unique(prefix: str = "kit") -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def make(client: TestClient, **body: Any) -> dict[str, Any]:
    body.setdefault("name", unique())
    return ok(client.post("/v1/kits", json=body), 201)


def refused(response: Any) -> dict[str, Any]:
    """A 422 problem: from the request's schema or from the service's own checks."""
    assert response.status_code == 422, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] in ("validation_error", "invalid_request") and body["detail"]
    return body


def ids_of(kit: dict[str, Any]) -> list[str]:
    return [p["id"] for p in kit["pads"] if p["id"]]


def test_a_new_kit_fills_every_pad_with_distinct_one_shots(client: TestClient) -> None:
    kit = make(client, pads=8)
    assert kit["size"] == 8 and len(kit["pads"]) == 8
    assert [p["slot"] for p in kit["pads"]][:3] == ["kick", "snare", "closed hat"]
    assert [p["index"] for p in kit["pads"]] == list(range(1, 9))
    assert [p["midi_note"] for p in kit["pads"]] == list(range(36, 44))
    taken = ids_of(kit)
    assert len(taken) == 8 and len(set(taken)) == 8
    assert all(p["hit"]["kind"] == "one_shot" for p in kit["pads"])
    # a slot naming an instrument the library holds gets that instrument
    assert kit["pads"][0]["hit"]["instrument"] == "kick"
    assert kit["pads"][1]["hit"]["instrument"] == "snare"
    again = ok(client.get(f"/v1/kits/{kit['name']}"))
    assert ids_of(again) == taken
    listed = ok(client.get("/v1/kits"))["kits"]
    assert {"name": kit["name"], "size": 8, "filled": 8} in [
        {k: v for k, v in k.items() if k in ("name", "size", "filled")} for k in listed
    ]


def test_sixteen_pads_take_the_default_slots_and_a_context_gives_each_its_fit(
    client: TestClient,
) -> None:
    kit = make(client, pads=16, context={"bpm": 124, "key": "A minor", "sort": "fit"})
    assert [p["midi_note"] for p in kit["pads"]] == list(range(36, 52))
    assert [p["slot"] for p in kit["pads"]][:4] == ["kick", "rim", "snare", "clap"]
    assert kit["context"] == {
        "bpm": 124.0,
        "key": "Am",
        "tolerance_pct": 8.0,
        "only_fitting": False,
    }
    taken = ids_of(kit)
    assert len(taken) == 16 and len(set(taken)) == 16
    # one-shots have no tempo and drums no key: they fit, with no relation to explain
    for pad in kit["pads"]:
        assert pad["fit"]["fits"] is True and pad["fit"]["stretch_pct"] is None, pad


def test_given_slots_come_first_and_the_defaults_fill_the_rest(client: TestClient) -> None:
    kit = make(client, pads=8, slots=["808 kick", "  clap  "], fill=False)
    assert [p["slot"] for p in kit["pads"]] == [
        "808 kick", "clap", "closed hat", "open hat", "clap", "perc", "tom", "crash"
    ]  # fmt: skip
    assert ids_of(kit) == [] and all(not p["missing"] for p in kit["pads"])
    filled = ok(client.post(f"/v1/kits/{kit['name']}/fill"))
    assert len(set(ids_of(filled))) == 8


def test_a_melodic_slot_prefers_a_fitting_key_and_says_when_none_fits(
    client: TestClient,
) -> None:
    # in ingest.synthetic every bass one-shot is in G minor, pad in Bb, lead in A minor and
    # pluck in C; a slot named after an instrument looks only at that instrument
    kit = make(client, pads=8, slots=["bass", "pad", "lead", "pluck"], context={"key": "Gm"})
    bass, pad, lead, pluck = kit["pads"][:4]
    assert bass["fit"] == {**bass["fit"], "fits": True, "key_relation": "same", "semitones": 0}
    assert bass["fit"]["audio_url"] is None  # nothing to match
    assert lead["fit"]["audio_url"] == f"{lead['hit']['audio_url']}?semitones=-2"  # Am -> Gm
    assert pad["fit"] == {**pad["fit"], "fits": True, "key_relation": "relative"}
    assert bass["note"] is None and pad["note"] is None
    for pad_out in (lead, pluck):  # nothing fits: the best by sound, and the pad says so
        assert pad_out["id"] and pad_out["fit"]["fits"] is False
        assert pad_out["fit"]["key_relation"] == "other"
        assert "fits the project" in pad_out["note"]
    strict = make(
        client, pads=8, slots=["bass", "lead"], context={"key": "Gm", "only_fitting": True}
    )
    assert strict["pads"][0]["id"] and strict["pads"][0]["fit"]["fits"] is True
    assert strict["pads"][1]["id"] is None and "only_fitting" in strict["pads"][1]["note"]


def test_swap_moves_to_a_neighbour_never_back_and_never_onto_another_pad(
    client: TestClient,
) -> None:
    kit = make(client, pads=8)
    name = kit["name"]
    first = kit["pads"][0]["id"]
    seen = {first}
    for _ in range(3):
        kit = ok(client.post(f"/v1/kits/{name}/pads/1/swap", json={}))  # as the page sends it
        now = kit["pads"][0]["id"]
        assert now not in seen  # the ones swapped away do not come back
        seen.add(now)
        assert len(set(ids_of(kit))) == 8
        assert kit["pads"][0]["hit"]["kind"] == "one_shot"


def test_locked_pads_survive_swap_all_and_refuse_edits(client: TestClient) -> None:
    kit = make(client, pads=8)
    name = kit["name"]
    before = [p["id"] for p in kit["pads"]]
    locked = ok(client.post(f"/v1/kits/{name}/pads/2/lock", json={"locked": True}))
    assert locked["pads"][1]["locked"] is True
    after = ok(client.post(f"/v1/kits/{name}/swap"))
    ids = [p["id"] for p in after["pads"]]
    assert ids[1] == before[1]
    assert all(a != b for i, (a, b) in enumerate(zip(ids, before, strict=True)) if i != 1)
    assert len(set(ids)) == 8
    for response in (
        client.post(f"/v1/kits/{name}/pads/2/swap"),
        client.delete(f"/v1/kits/{name}/pads/2"),
        client.put(f"/v1/kits/{name}/pads/2", json={"id": before[0]}),
    ):
        problem(response, 409, "conflict")
    relabelled = ok(client.put(f"/v1/kits/{name}/pads/2", json={"slot": "snap"}))
    assert relabelled["pads"][1]["slot"] == "snap" and relabelled["pads"][1]["id"] == before[1]
    ok(client.post(f"/v1/kits/{name}/pads/2/lock", json={"locked": False}))
    cleared = ok(client.delete(f"/v1/kits/{name}/pads/2"))
    assert cleared["pads"][1]["id"] is None and cleared["pads"][1]["hit"] is None


def test_a_dropped_row_goes_on_a_pad_but_never_on_two(client: TestClient) -> None:
    kit = make(client, pads=8)
    name = kit["name"]
    hits = ok(client.post("/v1/search/text", json={"query": "pad", "top_k": 30}))["hits"]
    outside = next(h["id"] for h in hits if h["id"] not in ids_of(kit))
    dropped = ok(client.put(f"/v1/kits/{name}/pads/3", json={"id": outside}))
    assert dropped["pads"][2]["id"] == outside
    assert dropped["pads"][2]["hit"]["audio_url"].endswith(f"/v1/items/{outside}/audio")
    body = problem(client.put(f"/v1/kits/{name}/pads/5", json={"id": outside}), 409, "conflict")
    assert "pad 3" in body["detail"]
    problem(client.put(f"/v1/kits/{name}/pads/5", json={"id": str(uuid.uuid4())}), 404, "not_found")
    problem(client.put(f"/v1/kits/{name}/pads/5", json={"id": "not-an-id"}), 404, "not_found")


def test_kit_names_are_unique_regardless_of_case_and_deleting_one_frees_it(
    client: TestClient,
) -> None:
    name = unique("Dup")
    make(client, name=name, pads=8, fill=False)
    problem(client.post("/v1/kits", json={"name": name.upper(), "pads": 8}), 409, "conflict")
    assert client.delete(f"/v1/kits/{name.lower()}").status_code == 204
    problem(client.get(f"/v1/kits/{name}"), 404, "not_found")
    make(client, name=name, pads=8, fill=False)


@pytest.mark.parametrize(
    "body",
    [
        {"pads": 10000},
        {"pads": 12},
        {"pads": "16x"},
        {"pads": True},
        {"pads": 8, "slots": ["kick"] * 9},
        {"pads": 16, "slots": ["kick"] * 17},
        {"pads": 8, "slots": ["   "]},
        {"pads": 8, "slots": ["kick\x01"]},
        {"pads": 8, "slots": ["k" * 41]},
        {"pads": 8, "slots": ["-distorted"]},  # only what to avoid: nothing to look for
        {"pads": 8, "slots": [7]},
        {"pads": 8, "context": {"bpm": 0}},
        {"pads": 8, "context": {"bpm": -3}},
        {"pads": 8, "context": {"bpm": 5000}},
        {"pads": 8, "context": {"key": "H# lydian"}},
        {"pads": 8, "context": {}},
        {"pads": 8, "context": {"bpm": 120, "tolerance_pct": 300}},
        {"pads": 8, "fill": "yes"},
        {"pads": 8, "name": ""},
        {"pads": 8, "name": "a/b"},
        {"pads": 8, "surprise": 1},
    ],
)
def test_bad_kits_are_refused_with_a_422(client: TestClient, body: dict[str, Any]) -> None:
    body = {"name": unique(), **body}
    refused(client.post("/v1/kits", json=body))


def test_text_that_is_not_text_or_a_bpm_that_is_not_a_number_is_a_422(
    client: TestClient,
) -> None:
    for raw in (
        '{"name": "lone \\ud800 surrogate", "pads": 8}',
        '{"name": "slots", "pads": 8, "slots": ["kick \\udc00"]}',
        '{"name": "key", "pads": 8, "context": {"key": "A\\ud800m"}}',
    ):
        response = client.post(
            "/v1/kits", content=raw, headers={"content-type": "application/json"}
        )
        refused(response)
    for raw in ('{"name": "nan kit", "pads": 8, "context": {"bpm": NaN}}',
                '{"name": "inf kit", "pads": 8, "context": {"bpm": Infinity}}'):  # fmt: skip
        response = client.post(
            "/v1/kits", content=raw, headers={"content-type": "application/json"}
        )
        refused(response)


def test_unknown_kits_and_pads_are_404_and_bad_indexes_422(client: TestClient) -> None:
    missing = unique("ghost")
    for response in (
        client.get(f"/v1/kits/{missing}"),
        client.delete(f"/v1/kits/{missing}"),
        client.post(f"/v1/kits/{missing}/fill"),
        client.post(f"/v1/kits/{missing}/swap"),
        client.post(f"/v1/kits/{missing}/pads/1/swap"),
        client.get(f"/v1/kits/{missing}/export"),
        client.put(f"/v1/kits/{missing}/pads/1", json={"slot": "kick"}),
        client.put(f"/v1/kits/{missing}/context", json={"bpm": 120}),
        client.delete(f"/v1/kits/{missing}/context"),
    ):
        problem(response, 404, "not_found")
    kit = make(client, pads=8, fill=False)
    name = kit["name"]
    problem(client.post(f"/v1/kits/{name}/pads/9/swap"), 404, "not_found")
    problem(client.put(f"/v1/kits/{name}/pads/9", json={"slot": "x"}), 404, "not_found")
    for index in ("0", "17", "-1", "x", "1.5"):
        problem(client.delete(f"/v1/kits/{name}/pads/{index}"), 422, "validation_error")
    problem(client.put(f"/v1/kits/{name}/pads/1", json={}), 422, "validation_error")
    problem(
        client.post(f"/v1/kits/{name}/pads/1/lock", json={"locked": "yes"}), 422, "validation_error"
    )
    problem(client.get(f"/v1/kits/{name}/export?format=wav"), 422, "validation_error")
    # nothing on any pad: nothing to export, said plainly
    body = problem(client.get(f"/v1/kits/{name}/export"), 409, "conflict")
    assert "no samples" in body["detail"]
    # a label that only says what to avoid would make every later fill fail: refused at once
    body = problem(
        client.put(f"/v1/kits/{name}/pads/1", json={"slot": "-noise"}), 422, "invalid_request"
    )
    assert "only words to avoid" in body["detail"]
    assert ok(client.post(f"/v1/kits/{name}/fill"))["pads"][0]["id"] is not None


def test_a_preview_fills_a_kit_without_saving_it(client: TestClient) -> None:
    before = {k["name"] for k in ok(client.get("/v1/kits"))["kits"]}
    kit = ok(client.post("/v1/search/kit", json={"pads": 8, "context": {"bpm": 128}}))
    assert kit["name"] is None and len(set(ids_of(kit))) == 8
    assert {k["name"] for k in ok(client.get("/v1/kits"))["kits"]} == before


def test_a_kit_moves_to_a_new_project_keeping_its_pads(client: TestClient) -> None:
    kit = make(client, pads=8, slots=["kick"], context={"bpm": 90, "key": "C", "tolerance_pct": 3})
    name = kit["name"]
    loop = first_hit(client, "drum loop", kind="loop")
    assert loop["bpm"], loop
    kit = ok(client.put(f"/v1/kits/{name}/pads/2", json={"id": loop["id"]}))
    pads = ids_of(kit)

    def loop_fit(view: dict[str, Any]) -> dict[str, Any]:
        fit: dict[str, Any] = view["pads"][1]["fit"]
        return fit

    # at the loop's own tempo it needs no stretch at all
    moved = ok(client.put(f"/v1/kits/{name}/context", json={"bpm": loop["bpm"], "key": "Am"}))
    assert ids_of(moved) == pads
    assert moved["context"] == {
        "bpm": loop["bpm"],
        "key": "Am",
        "tolerance_pct": 8.0,  # a new project: the settings' tolerance unless it says one
        "only_fitting": False,
    }
    assert loop_fit(moved)["stretch_pct"] == 0 and loop_fit(moved)["fits"] is True
    assert ok(client.get(f"/v1/kits/{name}"))["context"] == moved["context"]
    # 30 % faster is neither within the tolerance nor half or double time
    far = ok(client.put(f"/v1/kits/{name}/context", json={"bpm": loop["bpm"] * 1.3}))
    assert loop_fit(far)["fits"] is False and loop_fit(far)["stretch_pct"] > 20
    assert far["context"]["key"] is None
    # without a project: the pads stay, no fits, and nothing to match an export to
    plain = ok(client.delete(f"/v1/kits/{name}/context"))
    assert plain["context"] is None and ids_of(plain) == pads
    assert all(p["fit"] is None for p in plain["pads"])
    problem(client.get(f"/v1/kits/{name}/export?matched=true"), 409, "conflict")
    for body in ({}, {"bpm": "fast"}, {"bpm": 0}, {"key": "H minor"}, {"bpm": 120, "x": 1}):
        refused(client.put(f"/v1/kits/{name}/context", json=body))
    assert ok(client.get(f"/v1/kits/{name}"))["context"] is None
