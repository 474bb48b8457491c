"""Targeted ingest jobs (a watcher's batch): named changes in, nothing else touched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import soundfile as sf

from app.schemas.admin import outside_paths
from tests.support.audio_factory import kick
from tests.support.ingest_helpers import ingest, job_settings, stored_paths


def _library(root: Path, n: int = 4) -> Path:
    for i in range(n):
        path = root / "Kicks" / f"Kick_{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, kick(22050, 0.2 + 0.05 * i, pitch_hz=40.0 + 7 * i), 22050)
    return root


def test_a_batch_reads_only_its_files_and_prunes_only_its_paths(
    tmp_path: Path, tiny_bundle: Path, audio_embedder: Any
) -> None:
    lib = _library(tmp_path / "lib").resolve()
    settings = job_settings(tiny_bundle, tmp_path / "data", workers=0)
    assert ingest(settings, audio_embedder, [lib], snapshot=False).exit_code == 0
    # Two files go, one of them named in the batch; one arrives.
    (lib / "Kicks" / "Kick_0.wav").unlink()
    (lib / "Kicks" / "Kick_1.wav").unlink()
    new = lib / "Kicks" / "Kick_New.wav"
    sf.write(new, kick(22050, 0.5, pitch_hz=99.0), 22050)
    gone = lib / "Kicks" / "Kick_0.wav"
    result = ingest(settings, audio_embedder, [lib], changed=(new,), gone=(gone,), snapshot=False)
    counts = result.summary["counts"]
    assert result.exit_code == 0
    assert counts["discovered"] == 1 and counts["indexed"] == 1
    assert counts["deleted_points"] == 1  # Kick_0 only: Kick_1 was not named
    assert stored_paths(settings, audio_embedder) == {
        str(lib / "Kicks" / f"Kick_{i}.wav") for i in (1, 2, 3)
    } | {str(new)}
    # A batch of only deletions finds no audio, and that is not a failure.
    only_gone = ingest(
        settings, audio_embedder, [lib], gone=(lib / "Kicks" / "Kick_1.wav",), snapshot=False
    )
    assert only_gone.exit_code == 0 and only_gone.summary["counts"]["deleted_points"] == 1


def test_gone_paths_under_an_empty_mount_point_are_kept(
    tmp_path: Path, tiny_bundle: Path, audio_embedder: Any
) -> None:
    lib = _library(tmp_path / "drive").resolve()
    settings = job_settings(tiny_bundle, tmp_path / "data", workers=0)
    ingest(settings, audio_embedder, [lib], snapshot=False)
    before = stored_paths(settings, audio_embedder)
    # Unplugged: the mount point is there and empty.
    lib.rename(tmp_path / "elsewhere")
    lib.mkdir()
    result = ingest(
        settings, audio_embedder, [lib], changed=(), gone=(lib / "Kicks",), snapshot=False
    )
    counts = result.summary["counts"]
    assert counts["deleted_points"] == 0 and counts["pruned_paths"] == 0
    assert counts["kept_unreadable_paths"] == 4
    assert "empty" in result.summary["pruned"]["kept"][0]["why"]
    assert stored_paths(settings, audio_embedder) == before


def test_changed_and_gone_must_lie_below_the_paths() -> None:
    assert outside_paths("/lib/a.wav", ["/lib"]) is None
    assert outside_paths("/lib/Old", ["/other", "/lib/"]) is None
    assert "below paths" in (outside_paths("/library/x.wav", ["/lib"]) or "")
    assert "climb" in (outside_paths("/lib/../etc/x.wav", ["/lib"]) or "")
