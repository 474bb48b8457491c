"""Renditions matched to a project's tempo and key: ``/v1/items/{id}/audio?bpm=&semitones=``,
through TestClient on the session's small indexed library (loops named with their BPM)."""

from __future__ import annotations

import io
import os
import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from ingest.synthetic import Library
from tests.support.api_fixtures import ok
from tests.support.one_file_media import one_file_media
from timbre.audio.key import estimate_key
from timbre.errors import AudioError, InvalidRequestError


@pytest.fixture(scope="module")
def items(client: TestClient) -> list[dict[str, Any]]:
    body = ok(client.post("/v1/browse", json={"top_k": 200}))
    return list(body["hits"])


def _loop(items: list[dict[str, Any]], bpm: float) -> dict[str, Any]:
    return next(h for h in items if h.get("bpm") == bpm and "Drum_Loop" in h["path"])


def _one_shot(items: list[dict[str, Any]]) -> dict[str, Any]:
    return next(h for h in items if h.get("kind") == "one_shot" and h["path"].endswith(".wav"))


def _audio(client: TestClient, item_id: str, **params: Any) -> Any:
    return client.get(f"/v1/items/{item_id}/audio", params=params)


def _frames(content: bytes) -> tuple[np.ndarray, int]:
    data, rate = sf.read(io.BytesIO(content), dtype="float32", always_2d=True)
    return data, int(rate)


def _renditions(data_dir: Path) -> set[str]:
    return {p.name for p in (data_dir / "cache" / "renditions").glob("*.wav")}


def test_a_loop_at_the_project_tempo_with_ranges_head_and_cache(
    client: TestClient, items: list[dict[str, Any]], indexed_dir: Path
) -> None:
    loop = _loop(items, 128.0)
    original, rate = _frames(Path(loop["path"]).read_bytes())
    # The indexed library is shared: another test may have asked for this rendition already.
    for old in (indexed_dir / "cache" / "renditions").glob("*.x1.0323+0st.m1.wav"):
        old.unlink()
    before = _renditions(indexed_dir)
    reply = _audio(client, loop["id"], bpm=124)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "audio/wav"
    assert reply.headers["x-timbre-matched"] == "bpm=124"
    assert reply.headers["x-timbre-source-bpm"] == "128"
    assert float(reply.headers["x-timbre-stretch"]) == pytest.approx(128 / 124, abs=1e-4)
    assert "x-timbre-unmatched" not in reply.headers
    assert reply.headers["content-disposition"].startswith("inline")
    assert "_124bpm.wav" in reply.headers["content-disposition"]
    frames, served_rate = _frames(reply.content)
    assert served_rate == rate and frames.shape == (round(len(original) * 1.0323), 2)
    made = _renditions(indexed_dir) - before
    assert len(made) == 1 and ".x1.0323+0st.m1" in next(iter(made))
    cached = indexed_dir / "cache" / "renditions" / next(iter(made))
    inode = cached.stat().st_ino
    # Ranges, as a player seeking asks them.
    part = client.get(
        f"/v1/items/{loop['id']}/audio", params={"bpm": 124}, headers={"Range": "bytes=44-99"}
    )
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 44-99/{len(reply.content)}"
    assert part.content == reply.content[44:100]
    assert part.headers["x-timbre-matched"] == "bpm=124"
    # HEAD: the same headers, no body.
    head = client.head(f"/v1/items/{loop['id']}/audio", params={"bpm": 124})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(reply.content))
    assert head.headers["x-timbre-stretch"] == reply.headers["x-timbre-stretch"]
    # Served again from the same file: not rendered anew.
    again = _audio(client, loop["id"], bpm=124)
    assert again.content == reply.content
    assert cached.stat().st_ino == inode and _renditions(indexed_dir) - before == made
    # Another project tempo with the same stretch shares the file (the key is the stretch).
    assert _audio(client, loop["id"], bpm=124.0).content == reply.content


def test_semitones_alone_keep_the_length_and_both_together_combine(
    client: TestClient, items: list[dict[str, Any]]
) -> None:
    loop = next(h for h in items if h.get("kind") == "loop" and h.get("key"))
    original, _ = _frames(Path(loop["path"]).read_bytes())
    shifted = _audio(client, loop["id"], semitones=-2)
    assert shifted.status_code == 200, shifted.text
    assert shifted.headers["x-timbre-matched"] == "semitones=-2"
    assert shifted.headers["x-timbre-stretch"] == "1"
    assert "x-timbre-source-bpm" not in shifted.headers
    frames, _ = _frames(shifted.content)
    assert frames.shape == original.shape
    assert not np.allclose(frames, original, atol=1e-2)  # moved, not passed through
    both = _audio(client, loop["id"], bpm=loop["bpm"] * 1.05, semitones=3)
    assert both.status_code == 200, both.text
    assert both.headers["x-timbre-matched"] == f"bpm={loop['bpm'] * 1.05:g}, semitones=3"
    frames, _ = _frames(both.content)
    assert frames.shape[0] == round(original.shape[0] * round(1 / 1.05, 4))


def test_a_pitched_loop_lands_in_the_asked_key(
    client: TestClient, items: list[dict[str, Any]]
) -> None:
    """Measured by Timbre's own key detector, where it reads the original's key at all."""
    checked = 0
    for loop in (h for h in items if h.get("kind") == "loop" and h.get("key")):
        original, rate = _frames(Path(loop["path"]).read_bytes())
        before = estimate_key(original.mean(axis=1), rate)
        if before is None:
            continue
        reply = _audio(client, loop["id"], semitones=5)
        shifted, rate = _frames(reply.content)
        after = estimate_key(shifted.mean(axis=1), rate)
        assert after is not None
        tonic = _pitch_class(before.key) + 5
        assert _pitch_class(after.key) == tonic % 12, (before.key, after.key)
        assert after.key.endswith("m") == before.key.endswith("m")
        checked += 1
    assert checked >= 1


def _pitch_class(key: str) -> int:
    names = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
    flats = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#"}
    note = key[:-1] if key.endswith("m") else key
    return names.index(flats.get(note, note))


def test_a_one_shot_has_no_tempo_to_match(client: TestClient, items: list[dict[str, Any]]) -> None:
    shot = _one_shot(items)
    plain = _audio(client, shot["id"], rendition="wav")
    reply = _audio(client, shot["id"], bpm=124)
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-timbre-unmatched"] == "bpm (no tempo)"
    assert "x-timbre-matched" not in reply.headers and reply.headers["x-timbre-stretch"] == "1"
    assert reply.content == plain.content  # nothing changed: the plain WAV rendition
    pitched = _audio(client, shot["id"], bpm=124, semitones=3, rendition="wav")
    assert pitched.status_code == 200, pitched.text
    assert pitched.headers["x-timbre-matched"] == "semitones=3"
    assert pitched.headers["x-timbre-unmatched"] == "bpm (no tempo)"
    assert _frames(pitched.content)[0].shape == _frames(plain.content)[0].shape


def test_half_time_plays_unchanged(client: TestClient, items: list[dict[str, Any]]) -> None:
    loop = _loop(items, 88.0)
    reply = _audio(client, loop["id"], bpm=176)  # 88 is half of it: plays as it is
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-timbre-matched"] == "bpm=176"
    assert reply.headers["x-timbre-stretch"] == "1"
    assert reply.content == _audio(client, loop["id"], rendition="wav").content


@pytest.mark.parametrize(
    "params",
    [
        {"bpm": 0},
        {"bpm": -120},
        {"bpm": "nan"},
        {"bpm": "inf"},
        {"bpm": 1000},
        {"bpm": "fast"},
        {"semitones": 13},
        {"semitones": -13},
        {"semitones": 1.5},
        {"semitones": "up"},
        {"bpm": 124, "rendition": "mp4"},
    ],
)
def test_bad_parameters_are_422_with_a_reason(
    client: TestClient, items: list[dict[str, Any]], params: dict[str, Any]
) -> None:
    reply = _audio(client, _loop(items, 128.0)["id"], **params)
    assert reply.status_code == 422, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.json()["detail"]
    head = client.head(f"/v1/items/{_loop(items, 128.0)['id']}/audio", params=params)
    assert head.status_code == 422


def test_a_stretch_too_far_is_served_unstretched_and_said(
    client: TestClient, items: list[dict[str, Any]]
) -> None:
    """174 BPM at 30 (or 60, or 15) would last 2.9 times as long: beyond what is matched. The
    request is valid by the API's own schema, so it is served, and the headers say why as is."""
    loop = _loop(items, 174.0)
    plain = _audio(client, loop["id"], rendition="wav")
    for bpm in (30, 5e-324):
        far = _audio(client, loop["id"], bpm=bpm)
        assert far.status_code == 200, far.text
        assert far.headers["x-timbre-unmatched"].startswith("bpm (174 BPM is more than 2x")
        assert "x-timbre-matched" not in far.headers and far.headers["x-timbre-stretch"] == "1"
        assert far.content == plain.content


def test_matching_always_answers_with_a_wav(
    client: TestClient, items: list[dict[str, Any]]
) -> None:
    loop = _loop(items, 174.0)
    matched = _audio(client, loop["id"], bpm=168)
    asked_original = _audio(client, loop["id"], bpm=168, rendition="original")
    assert asked_original.status_code == 200 and asked_original.content == matched.content
    assert asked_original.headers["content-type"] == "audio/wav"


def test_unknown_items_are_404(client: TestClient) -> None:
    for item_id in (str(uuid.uuid4()), "not-a-uuid"):
        assert _audio(client, item_id, bpm=124).status_code == 404
        assert _audio(client, item_id, semitones=2).status_code == 404


def test_a_file_gone_since_indexing_is_answered_as_for_the_plain_rendition(
    client: TestClient, items: list[dict[str, Any]], library: Library
) -> None:
    loop = _loop(items, 122.0)
    path = Path(loop["path"])
    aside = path.with_name(path.name + ".aside")
    path.rename(aside)
    try:
        plain = _audio(client, loop["id"], rendition="wav")
        matched = _audio(client, loop["id"], bpm=126, semitones=1)
    finally:
        aside.rename(path)
    assert 400 <= plain.status_code < 500
    assert matched.status_code == plain.status_code, matched.text
    assert matched.json()["code"] == plain.json()["code"]
    assert _audio(client, loop["id"], bpm=126, semitones=1).status_code == 200  # back again


def test_a_long_item_is_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "Stem_120bpm.wav"
    sf.write(path, np.zeros(8000 * 121, np.float32), 8000)
    media = one_file_media(path, {"bpm": 120.0, "kind": "loop"}, tmp_path / "cache")
    with pytest.raises(AudioError, match="matching") as refused:
        media.matched_rendition("a", bpm=124, semitones=0)
    assert refused.value.code == "too_long"
    media.wav_rendition("a").close()  # the plain rendition has the general limit


def test_concurrent_first_requests_render_once(tmp_path: Path) -> None:
    path = tmp_path / "Loop_120bpm.wav"
    sf.write(path, np.random.default_rng(0).uniform(-0.3, 0.3, (88200, 2)), 44100)
    media = one_file_media(path, {"bpm": 120.0, "kind": "loop"}, tmp_path / "cache")
    inodes: list[int] = []

    def ask() -> None:
        rendition = media.matched_rendition("a", bpm=126, semitones=-1)
        inodes.append(os.fstat(rendition.handle.fileno()).st_ino)
        rendition.close()

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(inodes) == 4 and len(set(inodes)) == 1  # one file, rendered once
    assert len(list((tmp_path / "cache" / "renditions").glob("*.wav"))) == 1


@pytest.mark.parametrize(
    ("bpm", "semitones"),
    [
        (0.0, 0),
        (-1.0, 0),
        (float("nan"), 0),
        (float("inf"), 0),
        (1000.0, 0),
        (None, 13),
        (None, 1.5),
    ],
)
def test_the_service_refuses_what_the_route_would(
    tmp_path: Path, bpm: float | None, semitones: Any
) -> None:
    """Kit exports call the service directly: the same values are refused there too."""
    path = tmp_path / "Loop_120bpm.wav"
    sf.write(path, np.zeros((4410, 2), np.float32), 44100)
    media = one_file_media(path, {"bpm": 120.0, "kind": "loop"}, tmp_path / "cache")
    with pytest.raises(InvalidRequestError, match=r"bpm|semitones"):
        media.matched_rendition("a", bpm=bpm, semitones=semitones)
