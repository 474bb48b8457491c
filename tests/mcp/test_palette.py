"""Palettes as an assistant builds them, through the MCP SDK's client and the HTTP API, on the
shared synthetic library (4 packs, each with a kick, a snare, a hat and a clap one-shot and
one drum loop at the pack's tempo: 128, 122, 88 and 174 BPM).

The rules under test (``timbre.search.palette``): a context's BPM range does not empty the
one-shot slots, a slot named after an instrument looks for it, and an empty slot says why.
"""

from __future__ import annotations

from typing import Any

import httpx
from mcp import Client

from tests.support.mcp_helpers import over_http, session, structured

TEMPO = {"bpm": "120-130"}  # the techno (128) and house (122) loops


def palette(url: str, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    """``build_palette`` through the SDK's client; checks the HTTP batch answers the same."""

    async def body(client: Client) -> Any:
        return await client.call_tool("build_palette", arguments)

    slots = structured(session(over_http(f"{url}/mcp"), body))["slots"]
    batch = {
        "queries": arguments["slots"],
        "distinct": arguments.get("distinct", True),
        "context": arguments.get("context"),
    }
    api = httpx.post(f"{url}/v1/search/batch", json=batch, timeout=60)
    assert api.status_code == 200, api.text
    for slot, result in zip(slots, api.json()["results"], strict=True):
        assert [h["id"] for h in slot["hits"]] == [h["id"] for h in result["hits"]]
        assert slot["notes"] == result["notes"] and slot["empty"] == result["empty"]
    return list(slots)


def test_a_tempo_context_leaves_the_one_shot_slots_full(url: str) -> None:
    kick, groove, anything = palette(
        url,
        {
            "context": TEMPO,
            "slots": [
                {"slot": "kick", "query": "punchy kick", "filter": {"kind": "one_shot"}},
                {"slot": "groove", "query": "drum loop", "filter": {"kind": "loop"}},
                {"slot": "any", "query": "drums", "top_k": 50},
            ],
        },
    )
    assert kick["hits"] and kick["empty"] is None
    assert all(h["kind"] == "one_shot" and h["bpm"] is None for h in kick["hits"])
    assert any("one-shots have no tempo" in n for n in kick["notes"])
    # loops still keep to the tempo: the 88 and 174 BPM loops are out
    assert sorted(h["bpm"] for h in groove["hits"]) == [122.0, 128.0]
    # a slot without a kind gets both: the loops in tempo and the one-shots
    loops = [h for h in anything["hits"] if h["kind"] == "loop"]
    assert loops == [] or all(120 <= h["bpm"] <= 130 for h in loops)
    assert any(h["kind"] == "one_shot" for h in anything["hits"])
    taken = [h["id"] for s in (kick, groove, anything) for h in s["hits"]]
    assert len(taken) == len(set(taken))  # distinct across both searches of a slot
    # hits are ranked by score, one list however many searches filled it
    scores = [h["score"] for h in anything["hits"]]
    assert scores == sorted(scores, reverse=True)
    # an emptied one-shot slot never blames the tempo it was spared
    [emptied] = palette(
        url,
        {
            "context": TEMPO,
            "slots": [
                {"slot": "kick", "query": "kick", "filter": {"kind": "one_shot", "pack": "None"}}
            ],
        },
    )
    assert emptied["hits"] == [] and emptied["empty"]["matches"] == 0
    dropped = {w["filter"]: w["matches"] for w in emptied["empty"]["without"]}
    assert dropped == {"filter.kind": 0, "filter.pack": 4, "slot.instrument": 0}
    # counts follow the same rule: without the pack, the 2 loops in tempo and 16 one-shots
    [any_kind] = palette(
        url, {"context": TEMPO, "slots": [{"query": "x", "filter": {"pack": "None"}}]}
    )
    dropped = {w["filter"]: w["matches"] for w in any_kind["empty"]["without"]}
    assert dropped == {"context.bpm": 0, "filter.pack": 18}


def test_a_slots_own_tempo_is_its_wish(url: str) -> None:
    [kick] = palette(
        url,
        {"slots": [{"slot": "kick", "query": "kick", "filter": {"bpm": "120-130"}}]},
    )
    # one-shots have no BPM: asked for by the slot itself, the range empties it, and it says so
    assert kick["hits"] == []
    assert kick["empty"]["matches"] == 0
    dropped = {w["filter"]: w["matches"] for w in kick["empty"]["without"]}
    assert dropped["filter.bpm"] == 4  # the four kicks
    assert "without filter.bpm (120-130): 4" in kick["empty"]["reason"]


def test_a_slot_named_after_an_instrument_looks_for_it(url: str) -> None:
    kick, snares, groove = palette(
        url,
        {
            "slots": [
                {"slot": "kick", "query": "a sound", "top_k": 10},
                {"slot": "snares", "query": "a sound", "top_k": 10},
                {"slot": "groove", "query": "a sound", "top_k": 10},
            ],
        },
    )
    assert [h["instrument"] for h in kick["hits"]] == ["kick"] * 4
    assert kick["notes"] == ["instrument kick (from the slot name 'kick')"]
    assert [h["instrument"] for h in snares["hits"]] == ["snare"] * 4
    # "groove" is no instrument: nothing is guessed
    assert groove["notes"] == [] and len(groove["hits"]) == 10
    # the slot's own instrument filter wins over its name
    [named] = palette(
        url,
        {"slots": [{"slot": "kick", "query": "x", "filter": {"instrument": "clap"}}]},
    )
    assert named["notes"] == [] and {h["instrument"] for h in named["hits"]} == {"clap"}


def test_an_empty_slot_names_the_filter_that_emptied_it(url: str) -> None:
    clash, first, second = palette(
        url,
        {
            "context": {"genre": "techno"},
            "slots": [
                {"slot": "kick", "query": "kick", "filter": {"pack": "Lofi Hip Hop Kit"}},
                {"slot": "a", "query": "kick", "filter": {"pack": "Deep House Grooves"}},
                {"slot": "b", "query": "kick", "filter": {"pack": "Deep House Grooves"}},
            ],
        },
    )
    assert clash["hits"] == [] and clash["empty"]["matches"] == 0
    dropped = {w["filter"]: (w["value"], w["matches"]) for w in clash["empty"]["without"]}
    # the kick of the lofi pack, or the techno one: each filter alone would let one through
    assert dropped == {
        "context.genre": ("techno", 1),
        "filter.pack": ("Lofi Hip Hop Kit", 1),
        "slot.instrument": ("kick", 0),
    }
    assert clash["empty"]["reason"].startswith("no sample matches the filters; without ")
    # techno AND deep house match nothing either: the same explanation, not a silent []
    assert first["hits"] == [] and second["hits"] == []
    assert first["empty"]["without"][0] == {
        "filter": "context.genre",
        "value": "techno",
        "matches": 5,
    }


def test_distinct_slots_that_run_out_say_the_earlier_slots_took_the_matches(url: str) -> None:
    first, second = palette(
        url,
        {
            "slots": [
                {
                    "slot": "a",
                    "query": "kick",
                    "filter": {"instrument": "kick", "pack": "Deep House Grooves"},
                },
                {
                    "slot": "b",
                    "query": "kick",
                    "filter": {"instrument": "kick", "pack": "Deep House Grooves"},
                },
            ],
        },
    )
    assert len(first["hits"]) == 1 and second["hits"] == []
    assert second["empty"]["matches"] == 1
    assert "went to earlier slots" in second["empty"]["reason"]
