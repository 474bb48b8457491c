"""Tags a file carries: words a producer wrote become tags; what a tool stamped does not."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import mutagen.flac
import pytest

from ingest.tags import read_tags
from tests.support.audio_factory import kick, write


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")
def test_the_sox_stamp_is_no_tag(tmp_path: Path) -> None:
    path = tmp_path / "strum.flac"
    # SoX stamps every FLAC it writes with the comment "Processed by SoX".
    subprocess.run(
        ["sox", "-n", "-r", "44100", str(path), "synth", "0.2", "sine", "440"], check=True
    )
    assert mutagen.flac.FLAC(path).tags["comment"] == ["Processed by SoX"]
    assert read_tags(path).words == []


def test_tool_stamps_go_and_the_producers_words_stay(tmp_path: Path) -> None:
    path = write(tmp_path / "a.flac", kick(44100), 44100)
    audio = mutagen.flac.FLAC(path)
    audio["comment"] = "Created with Audacity, dusty; warm, LAME3.100, Lavf58.76.100"
    audio["genre"] = "Hip Hop"
    audio.save()
    assert read_tags(path).words == ["hip hop", "dusty", "warm"]


def _with_info(path: Path, comment: str) -> None:
    """Append a RIFF LIST/INFO chunk with an ICMT comment, as many tools write it."""
    text = comment.encode("latin-1") + b"\0"
    if len(text) % 2:
        text += b"\0"
    body = b"INFO" + b"ICMT" + struct.pack("<I", len(text)) + text
    data = path.read_bytes() + b"LIST" + struct.pack("<I", len(body)) + body
    path.write_bytes(data[:4] + struct.pack("<I", len(data) - 8) + data[8:])


def test_a_riff_comment_stamp_is_no_tag(tmp_path: Path) -> None:
    path = write(tmp_path / "hit.wav", kick(44100), 44100)
    _with_info(path, "Made with FruityLoops 3 (98-01), punchy")
    assert read_tags(path).words == ["punchy"]
