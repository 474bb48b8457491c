"""Kits through the HTTP API: create and fill, pads, swap, lock, and refusals (never a 5xx),
on the shared synthetic library (4 packs of 9 one-shots: kick, snare, hat, clap, bass, pad,
lead, pluck, riser; and 2 loops each: drums and bass at the pack's tempo)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.api_fixtures import ok, problem


def unique(prefix: str = "kit") -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def make(client: TestClient, **body: Any) -> dict[str, Any]:
    body.setdefault("name", unique())
    return ok(client.post("/v1/kits", json=body), 201)


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
