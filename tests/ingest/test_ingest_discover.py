"""Discovery on awkward file systems, stored path texts, and the progress line."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from ingest.discover import Skipped, discover
from ingest.report import Progress
from timbre.store.pathtext import path_bytes, path_from_text, path_text


def test_path_text_is_lossless_and_valid_utf8() -> None:
    rng = np.random.default_rng(0)
    names = [bytes([b]) for b in range(1, 256) if b != ord("/")]
    names += [bytes(rng.integers(1, 256, size=int(rng.integers(1, 40)))) for _ in range(2000)]
    names += [b"caf\xe9.wav", b"caf\\xe9.wav", b"a\\\\b", b"\\", b"\xed\xa0\x80", b"\xc3\xa9"]
    texts = set()
    for raw in names:
        text = path_text(raw)
        text.encode("utf-8")  # never a lone surrogate
        assert path_bytes(text) == raw
        texts.add(text)
    assert len(texts) == len(set(names))  # one-to-one
    assert path_text("Kicks/Kick 01 é.wav") == "Kicks/Kick 01 é.wav"  # UTF-8 kept as is
    assert path_text(b"caf\xe9.wav") == "caf\\xe9.wav"
    assert path_text(b"caf\\xe9.wav") == "caf\\\\xe9.wav"  # a real backslash, doubled
    assert path_from_text("C:\\temp") == Path("C:\\temp")  # a lone backslash typed by hand


def _scan(*roots: Path) -> tuple[list[str], dict[str, str]]:
    skipped: list[Skipped] = []
    found = [f.text for f in discover(list(roots), on_skip=skipped.append)]
    return found, {s.path: s.reason for s in skipped}


def test_discovery_passes_over_loops_fifos_and_oddities_and_says_why(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    (lib / "sub").mkdir(parents=True)
    for name in ("a.wav", "sub/b.wav"):
        (lib / name).write_bytes(b"RIFF....WAVEfmt ")
    Path(os.fsdecode(os.fsencode(lib / "sub") + b"/caf\xe9.wav")).write_bytes(b"RIFF....WAVEfmt ")
    (lib / "sub" / "self").symlink_to("self")
    (lib / "sub" / "x").symlink_to("y")
    (lib / "sub" / "y").symlink_to("x")
    (lib / "sub" / "up").symlink_to("..")
    (lib / "sub" / "z_again.wav").symlink_to("b.wav")
    (lib / "out").symlink_to(tmp_path)
    os.mkfifo(lib / "fifo.wav")
    (lib / "patch.pat").write_bytes(b"GF1PATCH110\x00")
    (lib / "notes.txt").write_text("hi")
    (lib / "noext").write_text("not audio")
    (lib / ".DS_Store").write_bytes(b"\x00")
    found, reasons = _scan(lib)
    assert found == [f"{lib}/a.wav", f"{lib}/sub/b.wav", f"{lib}/sub/caf\\xe9.wav"]
    s = f"{lib}/sub"
    assert reasons == {
        f"{lib}/.DS_Store": "hidden",
        f"{lib}/fifo.wav": "special_file",
        f"{lib}/noext": "not_audio",
        f"{lib}/notes.txt": "not_audio",
        f"{lib}/out": "outside_roots",
        f"{lib}/patch.pat": "unsupported_format",
        f"{s}/z_again.wav": "already_found",
        f"{s}/self": "symlink_loop",
        f"{s}/up": "symlink_loop",
        f"{s}/x": "symlink_loop",
        f"{s}/y": "symlink_loop",
    }


def test_an_empty_root_and_a_fifo_root_are_reported(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    os.mkfifo(tmp_path / "pipe.wav")
    found, reasons = _scan(tmp_path / "empty", tmp_path / "pipe.wav")
    assert found == []
    assert reasons == {
        f"{tmp_path}/empty": "empty_root",
        f"{tmp_path}/pipe.wav": "special_file",
    }


def test_a_root_that_loops_is_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to("loop")
    with pytest.raises(FileNotFoundError, match="cannot be used"):
        _scan(tmp_path / "loop")


def test_the_progress_line_counts_failed_files_apart(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="timbre.ingest")
    with Progress(29, interactive=False, interval_s=1e9) as progress:
        for _ in range(8):
            progress.advance(failed=1)
        progress.advance(files=21, audio_s=10.0)
    assert "done: 21/29 files embedded, 8 failed" in caplog.text
