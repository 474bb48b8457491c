"""The "unmounted drive" rule of ``--prune`` and watcher batches: it keeps the paths below a
missing or empty library root and below an empty mount point, and no others.

A folder emptied because its only file moved out is not a drive: its old path must go, or
the index keeps a dead path for good (docs/paths.md).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from ingest.prune import _Whereabouts, configured_mount_points
from tests.support.audio_factory import kick
from tests.support.ingest_helpers import ingest, job_settings, stored_paths


def _library(root: Path) -> Path:
    for folder, name, pitch in (("Kicks", "Kick_0", 40.0), ("Other", "Snare_0", 90.0)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        sf.write(root / folder / f"{name}.wav", kick(22050, 0.25, pitch_hz=pitch), 22050)
    return root


def test_moving_the_only_file_out_of_a_folder_prunes_its_old_path(
    tmp_path: Path, tiny_bundle: Path, audio_embedder: Any
) -> None:
    lib = _library(tmp_path / "lib").resolve()
    settings = job_settings(tiny_bundle, tmp_path / "data", workers=0)
    ingest(settings, audio_embedder, [lib], snapshot=False)
    snare = lib / "Other" / "Snare_0.wav"
    # A watcher's batch: Kicks/ is left empty.
    old, new = lib / "Kicks" / "Kick_0.wav", lib / "Other" / "Kick_0.wav"
    old.rename(new)
    result = ingest(settings, audio_embedder, [lib], changed=(new,), gone=(old,), snapshot=False)
    counts = result.summary["counts"]
    assert (counts["pruned_paths"], counts["kept_unreadable_paths"]) == (1, 0)
    assert stored_paths(settings, audio_embedder) == {str(new), str(snare)}
    # --prune: the snare moves into a folder of its own and back out, leaving Solo/ empty.
    (lib / "Solo").mkdir()
    snare.rename(lib / "Solo" / "Snare_0.wav")
    ingest(settings, audio_embedder, [lib], prune=True, snapshot=False)
    (lib / "Solo" / "Snare_0.wav").rename(snare)
    result = ingest(settings, audio_embedder, [lib], prune=True, snapshot=False)
    counts = result.summary["counts"]
    assert (counts["pruned_paths"], counts["kept_unreadable_paths"]) == (1, 0)
    assert stored_paths(settings, audio_embedder) == {str(new), str(snare)}


def test_a_missing_root_keeps_its_paths(
    tmp_path: Path, tiny_bundle: Path, audio_embedder: Any
) -> None:
    lib = _library(tmp_path / "drive").resolve()
    settings = job_settings(tiny_bundle, tmp_path / "data", workers=0)
    ingest(settings, audio_embedder, [lib], snapshot=False)
    before = stored_paths(settings, audio_embedder)
    lib.rename(tmp_path / "elsewhere")  # unplugged: not even the mount point is left
    batch = ingest(settings, audio_embedder, [lib], changed=(), gone=(lib / "Kicks",))
    assert batch.summary["counts"]["kept_unreadable_paths"] == 1
    assert "missing" in batch.summary["pruned"]["kept"][0]["why"]
    with pytest.raises(FileNotFoundError, match="library root"):
        ingest(settings, audio_embedder, [lib], prune=True, snapshot=False)
    assert stored_paths(settings, audio_embedder) == before


def test_an_empty_folder_keeps_its_paths_only_where_a_drive_is_mounted(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    (lib / "Drive One").mkdir(parents=True)
    (lib / "Moved Out").mkdir()
    (lib / "other.wav").write_bytes(b"")
    fstab = tmp_path / "fstab"
    fstab.write_text(
        "# <file system> <mount point> <type> <options> <dump> <pass>\n"
        f"UUID=1234 {lib}/Drive\\040One ext4 defaults 0 2\n"
        f"UUID=5678 {lib}/Über\\040Drive ext4 defaults 0 2\n"
        "proc /proc proc defaults 0 0\n"
    )
    mounts = configured_mount_points(fstab)
    assert {lib / "Drive One", lib / "Über Drive"} <= mounts
    where = _Whereabouts([lib], mounts)
    assert "mount point" in (where.why_kept(f"{lib}/Drive One/x.wav") or "")
    assert where.why_kept(f"{lib}/Moved Out/x.wav") is None
    assert _Whereabouts([lib], frozenset()).why_kept(f"{lib}/Drive One/x.wav") is None
    # The root itself, empty, is what an unplugged drive's mount point looks like.
    (lib / "other.wav").unlink()
    shutil.rmtree(lib / "Drive One")
    shutil.rmtree(lib / "Moved Out")
    assert "empty library root" in (_Whereabouts([lib], mounts).why_kept(f"{lib}/a.wav") or "")


def test_an_empty_folder_that_is_mounted_keeps_its_paths(tmp_path: Path) -> None:
    point = tmp_path / "lib" / "Share"
    point.mkdir(parents=True)
    (tmp_path / "lib" / "other.wav").write_bytes(b"")
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(point)],
        check=False,
        capture_output=True,
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.decode().strip()}")
    try:
        why = _Whereabouts([tmp_path / "lib"], frozenset()).why_kept(f"{point}/Kick.wav")
        assert "empty mount point" in (why or "")
    finally:
        subprocess.run(["umount", str(point)], check=True)
    assert _Whereabouts([tmp_path / "lib"], frozenset()).why_kept(f"{point}/Kick.wav") is None
