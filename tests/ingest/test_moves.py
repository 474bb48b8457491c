"""After moves, renames, copies, deletions and re-ingests, the store equals a clean ingest.

Every fact a path gives (``pack``, ``genre``, ``instrument``, ``tags``, a BPM or key a name
states, the ``kind``, the folder index ``dirs``) must follow the point's current paths, as
a fresh ingest of the final tree into an empty data dir computes them; and a folder emptied
by a move is no unmounted drive (see docs/paths.md).
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from tests.support.audio_factory import chord_loop, hat, kick, tone
from tests.support.ingest_helpers import ingest, job_settings, read_store
from timbre.settings import Settings
from timbre.store import open_store
from timbre.store.payload import DIRS_FIELD

SR = 22050
TIMESTAMPS = ("ingested_at",)


def _write(path: Path, samples: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, SR)
    return path


def _library(root: Path) -> Path:
    """Names that state facts: a BPM, a key, an instrument, a genre folder, a loop word."""
    _write(root / "KitA" / "Kick_01.wav", kick(SR, 0.3))
    _write(root / "KitA" / "Hats" / "Hat_Closed.wav", hat(SR, 0.15))
    _write(root / "KitB" / "Techno" / "Bass_124bpm_Am_Loop.wav", chord_loop(SR, 60 / 124 * 8))
    _write(root / "KitB" / "Pad_C major.wav", tone(SR, 2.0, 261.6))
    _write(root / "KitB" / "Texture.wav", tone(SR, 2.5, 330.0) + tone(SR, 2.5, 392.0, 0.2))
    _write(root / "Loops" / "Groove.wav", chord_loop(SR, 4.0, bpm=120.0, seed=3))
    return root


def _payloads(settings: Settings, embedder: Any) -> dict[str, dict[str, Any]]:
    return {
        pid: {k: v for k, v in payload.items() if k not in TIMESTAMPS}
        for pid, (payload, _) in read_store(settings, embedder).items()
    }


def _folders(settings: Settings, embedder: Any) -> dict[str, int]:
    store = open_store(settings, embedder.info)
    try:
        return {f.value: f.count for f in store.live().facets([DIRS_FIELD], limit=1000)[DIRS_FIELD]}
    finally:
        store.close()


def _assert_like_a_clean_ingest(
    lib: Path, settings: Settings, embedder: Any, tmp_path: Path
) -> dict[str, dict[str, Any]]:
    clean = job_settings(settings.models.bundle, tmp_path / "clean-data", workers=0)
    assert ingest(clean, embedder, [lib], snapshot=False).exit_code == 0
    want, got = _payloads(clean, embedder), _payloads(settings, embedder)
    assert sorted(got) == sorted(want)
    for pid, payload in want.items():
        assert got[pid] == payload, pid
    assert _folders(settings, embedder) == _folders(clean, embedder)
    return got


def test_moves_renames_and_a_parent_after_its_subfolder_end_as_a_clean_ingest(
    tmp_path: Path, tiny_bundle: Path, audio_embedder: Any
) -> None:
    lib = _library(tmp_path / "lib").resolve()
    settings = job_settings(tiny_bundle, tmp_path / "data", workers=0)
    # A subfolder first: its files have no pack. Then the parent: they must get one.
    assert ingest(settings, audio_embedder, [lib / "KitB"], snapshot=False).exit_code == 0
    assert ingest(settings, audio_embedder, [lib], snapshot=False).exit_code == 0
    packs = {p["path"]: p["pack"] for p in _payloads(settings, audio_embedder).values()}
    assert packs[str(lib / "KitB" / "Texture.wav")] == "KitB"

    # A pack renamed, picked up by --prune.
    (lib / "KitB").rename(lib / "KitB2")
    ingest(settings, audio_embedder, [lib], prune=True, snapshot=False)
    packs = {p["path"]: p["pack"] for p in _payloads(settings, audio_embedder).values()}
    assert packs[str(lib / "KitB2" / "Texture.wav")] == "KitB2"

    # Renames through a watcher batch: the name now states the key the audio gave, and no
    # longer states the tempo, which the audio must give instead.
    texture, bass = lib / "KitB2" / "Texture.wav", lib / "KitB2" / "Techno"
    texture.rename(lib / "KitB2" / "Texture_Dm.wav")
    (bass / "Bass_124bpm_Am_Loop.wav").rename(bass / "Bass_Loop.wav")
    changed = (lib / "KitB2" / "Texture_Dm.wav", bass / "Bass_Loop.wav")
    gone = (texture, bass / "Bass_124bpm_Am_Loop.wav")
    job = ingest(settings, audio_embedder, [lib], changed=changed, gone=gone, snapshot=False)
    assert job.summary["counts"]["rederived"] == 2

    # The only file of a folder moved out (its old folder stays, empty); a copy made and the
    # original deleted, so the copy's path becomes the primary one.
    (lib / "KitA" / "Kick_01.wav").rename(lib / "Loops" / "Kick_01.wav")
    (lib / "Shots").mkdir()
    shutil.copy2(lib / "KitA" / "Hats" / "Hat_Closed.wav", lib / "Shots" / "Hat_Copy.wav")
    ingest(settings, audio_embedder, [lib], snapshot=False)
    (lib / "KitA" / "Hats" / "Hat_Closed.wav").unlink()
    assert ingest(settings, audio_embedder, [lib], prune=True, snapshot=False).exit_code == 0

    got = _assert_like_a_clean_ingest(lib, settings, audio_embedder, tmp_path)
    by_path = {p["path"]: p for p in got.values()}
    assert by_path[str(lib / "KitB2" / "Texture_Dm.wav")]["key_source"] == "name"
    assert by_path[str(lib / "Shots" / "Hat_Copy.wav")]["pack"] == "Shots"
    assert str(lib / "KitA") not in _folders(settings, audio_embedder)


_NAME_PARTS = ("Kick", "Hat", "Bass", "Pad", "Loop", "One Shot", "124bpm", "90 BPM", "Am", "F#m")
_FOLDERS = ("Techno", "Drums", "Loops", "Deep House", "One Shots", "Misc", "KitX", "KitY")


class _Churn:
    """Seeded random file operations on a library, remembering what each batch touched."""

    def __init__(self, lib: Path, pool: list[Path], seed: int) -> None:
        self.lib, self.pool, self.rng = lib, pool, random.Random(seed)
        self.changed: set[Path] = set()
        self.gone: set[Path] = set()
        self.serial = 0

    def files(self) -> list[Path]:
        return sorted(p for p in self.lib.rglob("*.wav"))

    def folders(self) -> list[Path]:
        return sorted({self.lib, *(p for p in self.lib.rglob("*") if p.is_dir())})

    def _name(self) -> str:
        self.serial += 1
        parts = self.rng.sample(_NAME_PARTS, self.rng.randint(1, 3))
        return "_".join([*parts, str(self.serial)]) + ".wav"

    def _folder(self) -> Path:
        if self.rng.random() < 0.3:
            return self.rng.choice(self.folders()) / self.rng.choice(_FOLDERS)
        return self.rng.choice(self.folders())

    def step(self) -> None:
        files = self.files()
        op = self.rng.choice(("add", "rename", "move", "move", "copy", "delete", "folder"))
        if op == "add" or len(files) < 3:
            target = self._folder() / self._name()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.rng.choice(self.pool), target)
            self.changed.add(target)
        elif op in ("rename", "move", "copy"):
            source = self.rng.choice(files)
            folder = source.parent if op == "rename" else self._folder()
            target = folder / self._name()
            folder.mkdir(parents=True, exist_ok=True)
            if op == "copy":
                shutil.copy2(source, target)
            else:
                source.rename(target)
                self.gone.add(source)
            self.changed.add(target)
        elif op == "delete":
            source = self.rng.choice(files)
            source.unlink()
            self.gone.add(source)
        else:
            subfolders = [f for f in self.folders() if f != self.lib]
            if not subfolders:
                return
            folder = self.rng.choice(subfolders)
            target = folder.parent / f"{self.rng.choice(_FOLDERS)} {self.serial}"
            self.serial += 1
            folder.rename(target)
            self.gone.add(folder)
            self.changed.add(target)

    def batch(self) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
        """What a watcher would hand the job: the paths there now, and those gone."""
        changed = tuple(sorted(p for p in self.changed if p.exists()))
        gone = tuple(sorted(p for p in self.gone if not p.exists()))
        self.changed, self.gone = set(), set()
        return changed, gone


def test_a_random_churn_ends_as_a_clean_ingest(
    tmp_path: Path, tiny_bundle: Path, audio_embedder: Any
) -> None:
    pool = [
        _write(tmp_path / "pool" / f"{i}.wav", sound)
        for i, sound in enumerate(
            [
                kick(SR, 0.3),
                kick(SR, 0.25, pitch_hz=70.0),
                hat(SR, 0.12, seed=1),
                tone(SR, 2.0, 220.0),
                tone(SR, 1.2, 523.0),
                chord_loop(SR, 60 / 124 * 8, seed=2),
                chord_loop(SR, 4.0, bpm=120.0, seed=5),
            ]
        )
    ]
    lib = (tmp_path / "lib").resolve()
    for i, source in enumerate(pool):
        target = lib / ("KitA" if i % 2 else "KitB") / f"Sample_{i}.wav"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    settings = job_settings(tiny_bundle, tmp_path / "data", workers=0)
    ingest(settings, audio_embedder, [lib / "KitA"], snapshot=False)
    ingest(settings, audio_embedder, [lib], snapshot=False)
    churn = _Churn(lib, pool, seed=21)
    for batch in range(8):
        for _ in range(5):
            churn.step()
        changed, gone = churn.batch()
        if batch % 2:  # a watcher's batch
            if changed or gone:
                ingest(settings, audio_embedder, [lib], changed=changed, gone=gone, snapshot=False)
        else:
            ingest(settings, audio_embedder, [lib], prune=True, snapshot=False)
    _assert_like_a_clean_ingest(lib, settings, audio_embedder, tmp_path)


@pytest.mark.parametrize("adapter", ["edge", "memory"])
def test_facets_never_list_a_folder_or_pack_that_no_point_holds(
    adapter: str, tmp_path: Path
) -> None:
    from tests.support.store_factory import make_dataset, open_test_store

    data = make_dataset(12)
    store = open_test_store(adapter, tmp_path)
    try:
        store.live().upsert(data.points)
        for point in data.points:  # every sample moved: no old folder holds one now
            store.live().set_paths(point.id, ["/moved/" + point.payload["path"].rsplit("/", 1)[-1]])
        store.live().set_payloads({p.id: {"pack": "Moved"} for p in data.points})
        facets = store.live().facets([DIRS_FIELD, "pack"], limit=1000)
        assert {(f.value, f.count) for f in facets[DIRS_FIELD]} == {
            ("/", 12),
            ("/moved", 12),
        }
        assert [(f.value, f.count) for f in facets["pack"]] == [("Moved", 12)]
    finally:
        store.close()


def test_stale_facts_of_an_older_index_are_corrected_by_the_next_ingest(
    tmp_path: Path, tiny_bundle: Path, audio_embedder: Any
) -> None:
    lib = _library(tmp_path / "lib").resolve()
    settings = job_settings(tiny_bundle, tmp_path / "data", workers=0)
    ingest(settings, audio_embedder, [lib], snapshot=False)
    fresh = _payloads(settings, audio_embedder)
    assert (
        ingest(settings, audio_embedder, [lib], snapshot=False).summary["counts"]["rederived"] == 0
    )  # a re-run of an index that is current changes nothing
    # What an index written before facts followed paths holds after KitB -> KitB2.
    texture = next(pid for pid, p in fresh.items() if p["path"].endswith("Texture.wav"))
    store = open_store(settings, audio_embedder.info)
    try:
        store.live().set_payloads({texture: {"pack": "KitB-old", "tags": ["old"]}})
    finally:
        store.close()
    result = ingest(settings, audio_embedder, [lib], snapshot=False)
    assert result.summary["counts"]["rederived"] == 1
    assert _payloads(settings, audio_embedder) == fresh
