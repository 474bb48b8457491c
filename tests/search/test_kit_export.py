"""Matched kit exports: each pad that needs matching takes the rendition an injected source
gives for the project's tempo and key; the rest are copied as they are. The source here is
the media service's plain WAV rendition, standing in for matched ones."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.support.api_fixtures import first_hit, ok
from timbre.search.collections import Opened
from timbre.search.kit_export import KitExporter


def test_a_matched_export_asks_the_rendition_of_each_pad_that_needs_one(
    client: TestClient,
) -> None:
    state = client.app.state  # type: ignore[attr-defined]
    asked: list[tuple[str, float | None, int]] = []

    def rendition(item_id: str, bpm: float | None, semitones: int) -> Opened:
        asked.append((item_id, bpm, semitones))
        return state.media.wav_rendition(item_id)  # type: ignore[no-any-return]

    exporter = KitExporter(state.kits, matched=rendition)
    body: dict[str, Any] = {
        "name": "Matched kit",
        "pads": 8,
        "slots": ["kick", "bass"],
        "context": {"bpm": 124, "key": "Am"},
    }
    kit = ok(client.post("/v1/kits", json=body), 201)
    loop = first_hit(client, "drum loop", kind="loop", instrument="drums", bpm="120-130")
    ok(client.put("/v1/kits/Matched kit/pads/3", json={"id": loop["id"]}))
    kit = ok(client.get("/v1/kits/Matched kit"))
    loop = kit["pads"][2]
    assert loop["fit"]["stretch_pct"] not in (None, 0)  # a 122 or 128 BPM loop at 124
    wanted = {
        (p["id"], 124.0 if p["fit"]["stretch_pct"] else None, p["fit"]["semitones"] or 0)
        for p in kit["pads"]
        if p["fit"]["stretch_pct"] or p["fit"]["semitones"]
    }
    assert (loop["id"], 124.0, 0) in wanted

    plan = exporter.plan("Matched kit", "sfz", matched=True)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(exporter.zip(plan))))
    assert set(asked) == wanted and len(asked) == len(wanted)
    assert kit["pads"][0]["id"] not in {a[0] for a in asked}  # a kick needs no matching
    text = archive.read("Matched kit/Matched kit.sfz").decode()
    samples = dict(re.findall(r"sample=(\S+) key=(\d+)", text))
    assert len(samples) == 8
    by_note = {int(k): s for s, k in samples.items()}
    assert by_note[38].endswith(".wav")
    for item_id, _, _ in asked:
        expected = state.media.wav_rendition(item_id)
        try:
            note = 36 + [p["id"] for p in kit["pads"]].index(item_id)
            assert archive.read(f"Matched kit/samples/{by_note[note]}") == expected.handle.read()
        finally:
            expected.close()
    kick = kit["pads"][0]["hit"]["path"]
    if kick.lower().endswith((".wav", ".aiff", ".flac")):  # the original, copied as it is
        original = Path(kick).read_bytes()
        assert archive.read(f"Matched kit/samples/{by_note[36]}") == original
