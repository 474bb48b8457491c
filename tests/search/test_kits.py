"""Kits without a server: slot labels, the choice rule, sample names, and the kits file."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from timbre.errors import ConflictError, InvalidRequestError, NotFoundError
from timbre.fit import ProjectContext
from timbre.kits_db import MAX_SWAPPED, Kits, Pad
from timbre.search.kit_export import hardware_name, plugin_name
from timbre.search.kit_slots import (
    DEFAULT_SLOTS,
    check_slot,
    context_dict,
    context_of,
    is_drum,
    slot_filter,
    slots_for,
)
from timbre.search.kits import _Fill
from timbre.store import Hit


def test_default_slots_and_given_ones() -> None:
    assert slots_for(8, None) == list(DEFAULT_SLOTS[8])
    assert len(slots_for(16, None)) == 16 and slots_for(16, None)[0] == "kick"
    assert slots_for(8, ["  Big   kick ", "rim"])[:3] == ["Big kick", "rim", "closed hat"]
    for size, given in ((12, None), (8, ["kick"] * 9), (8, [""]), (8, ["a\x00b"]), (8, ["x" * 41])):
        with pytest.raises(InvalidRequestError):
            slots_for(size, given)
    with pytest.raises(InvalidRequestError):
        check_slot(3)  # type: ignore[arg-type]


def test_drum_slots_look_among_one_shots_first() -> None:
    assert is_drum("kick") and is_drum("Closed Hats") and is_drum("808 snare") and is_drum("fx")
    assert not is_drum("bass") and not is_drum("warm pad") and not is_drum("vocal chop")
    drum = slot_filter("open hat")
    assert drum is not None and drum.kind == ("one_shot",)
    assert slot_filter("lead") is None


def hit(key: str | None, kind: str = "one_shot", bpm: float | None = None) -> Hit:
    return Hit(str(uuid.uuid4()), 0.5, {"key": key, "kind": kind, "bpm": bpm})


def test_the_choice_prefers_fitting_samples_then_falls_back_and_says_so() -> None:
    context = ProjectContext.of(124, "Am")
    far, near = hit("F#"), hit("C")  # F# major is no relation of A minor; C is its relative
    chosen, note = _Fill(context, False, set()).choose([far, near])
    assert chosen is near and note is None
    chosen, note = _Fill(context, False, set()).choose([far, hit("D#")])
    assert chosen is far and note is not None and "fits" in note
    chosen, note = _Fill(context, True, set()).choose([far])
    assert chosen is None and note is not None and "only_fitting" in note
    slow_loop = hit(None, "loop", 90)  # 90 -> 124 BPM is a 38 % stretch (or 31 % at half time)
    chosen, _ = _Fill(context, False, set()).choose([slow_loop, hit(None)])
    assert chosen is not slow_loop
    # taken ids never come back; without a context the best by score wins
    first, second = hit(None), hit(None)
    assert _Fill(None, False, {first.id}).choose([first, second]) == (second, None)
    assert _Fill(None, False, set()).choose([first], avoid={first.id}) == (None, None)


def test_a_stored_context_reads_back_as_the_same_project() -> None:
    context = ProjectContext.of(124, "a minor", 5)
    stored = context_dict(context, True)
    assert stored == {"bpm": 124, "key": "Am", "tolerance_pct": 5, "only_fitting": True}
    assert context_of(stored) == context
    assert context_of(None) is None and context_of({"bpm": None, "key": None}) is None
    with pytest.raises(InvalidRequestError):
        context_of({"key": "Q flat"})


def test_sample_names_are_ascii_and_hardware_ones_short() -> None:
    assert hardware_name(1, "kick") == "01_KICK.WAV"
    assert hardware_name(3, "closed hat") == "03_CLOSEDHAT.WAV"
    assert hardware_name(12, "Crème brûlée crash") == "12_CREMEBRUL.WAV"
    assert hardware_name(16, "🥁") == "16_PAD.WAV"
    assert all(len(hardware_name(i, "x" * 40)) <= 16 for i in range(1, 17))
    assert plugin_name(2, "Open Hät", ".flac") == "02_open_hat.flac"
    assert plugin_name(5, "☃", ".wav") == "05_pad.wav"


def pads(n: int = 8) -> list[Pad]:
    return [Pad(i, f"slot {i}") for i in range(1, n + 1)]


def test_kits_survive_a_reopen_and_names_ignore_case(tmp_path: Path) -> None:
    db = Kits.in_data_dir(tmp_path)
    item = str(uuid.uuid4())
    first = [Pad(1, "kick", item, "/lib/kick.wav", True, "a note", ("x",)), *pads()[1:]]
    db.create("Techno", 8, {"bpm": 128.0, "key": None}, first)
    with pytest.raises(ConflictError):
        db.create("TECHNO", 8, None, pads())
    db.close()
    again = Kits.in_data_dir(tmp_path)
    record = again.get("techno")
    assert record.info.name == "Techno" and record.info.size == 8 and record.info.filled == 1
    assert record.context == {"bpm": 128.0, "key": None}
    assert record.pads[0] == first[0] and record.pads[1] == Pad(2, "slot 2")
    assert [k.name for k in again.list_all()] == ["Techno"]
    again.delete("Techno")
    with pytest.raises(NotFoundError):
        again.get("Techno")


def test_pads_are_checked_and_the_swap_history_is_capped(tmp_path: Path) -> None:
    db = Kits.in_data_dir(tmp_path)
    for size, given in ((12, pads(12)), (8, pads(7))):
        with pytest.raises(InvalidRequestError):
            db.create("odd", size, None, given)
    for bad in ("", " ", "a/b", "x" * 65, "kick\u202e"):
        with pytest.raises(InvalidRequestError):
            db.create(bad, 8, None, pads())
    db.create("Small", 8, None, pads())
    with pytest.raises(NotFoundError):
        db.save_pads("Small", [Pad(9, "nine")])
    history = tuple(str(i) for i in range(MAX_SWAPPED + 10))
    saved = db.save_pads("Small", [Pad(2, "snare", swapped=history)])
    assert saved.pads[1].swapped == history[-MAX_SWAPPED:]
