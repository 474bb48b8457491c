"""Snapshot checksums: hashed on the first load, again only for files changed since."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.store_factory import make_dataset, model_info, open_test_store
from timbre.errors import SnapshotError
from timbre.store import VectorStore
from timbre.store.snapshot import PAYLOADS_FILE, export_snapshot, load_snapshot, reader
from timbre.store.snapshot.verified import VERIFIED_FILE


@pytest.fixture
def snapshots(tmp_path: Path) -> Iterator[Path]:
    store: VectorStore = open_test_store("edge", tmp_path)
    try:
        store.live().upsert(make_dataset(300, seed=5).points)
        export_snapshot(store.live(), tmp_path / "snapshots", source_mode=store.mode, keep=3)
    finally:
        store.close()
    yield tmp_path / "snapshots"


@pytest.fixture
def hashed(snapshots: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files each load hashes (the real hash runs; this only notes its argument)."""
    seen: list[str] = []
    real = reader.sha256_file

    def spy(path: Path) -> str:
        seen.append(path.relative_to(snapshots / "000001").as_posix())
        return real(path)

    monkeypatch.setattr(reader, "sha256_file", spy)
    return seen


def _load(snapshots: Path, **kwargs: bool) -> None:
    load_snapshot(snapshots, model_info(), mmap_min_bytes=0, **kwargs).close()


def test_a_second_load_hashes_nothing_unchanged(snapshots: Path, hashed: list[str]) -> None:
    _load(snapshots)
    manifest = json.loads((snapshots / "000001" / "manifest.json").read_text())
    assert sorted(hashed) == sorted(manifest["files"])  # the first load hashes every file
    record = json.loads((snapshots / "000001" / VERIFIED_FILE).read_text())
    assert {name: e["sha256"] for name, e in record.items()} == {
        name: e["sha256"] for name, e in manifest["files"].items()
    }
    hashed.clear()
    _load(snapshots)
    assert hashed == []
    _load(snapshots, reverify_unchanged=True)
    assert sorted(hashed) == sorted(manifest["files"])


def test_a_file_corrupted_after_it_passed_is_refused(snapshots: Path, hashed: list[str]) -> None:
    _load(snapshots)
    payloads = snapshots / "000001" / PAYLOADS_FILE
    before = payloads.stat()
    raw = bytearray(payloads.read_bytes())
    raw[10] ^= 0x01  # one flipped bit, same size, and the old modification time put back
    payloads.write_bytes(bytes(raw))
    os.utime(payloads, ns=(before.st_atime_ns, before.st_mtime_ns))
    hashed.clear()
    with pytest.raises(SnapshotError, match=r"payloads.jsonl fails its sha256"):
        _load(snapshots)
    assert hashed == [PAYLOADS_FILE]  # the only file whose identity changed


def test_a_file_replaced_by_another_passes_only_if_its_bytes_match(
    snapshots: Path, hashed: list[str]
) -> None:
    _load(snapshots)
    payloads = snapshots / "000001" / PAYLOADS_FILE
    copy = payloads.with_name("copy")
    copy.write_bytes(payloads.read_bytes())
    copy.replace(payloads)  # same bytes, a new inode
    hashed.clear()
    _load(snapshots)
    assert hashed == [PAYLOADS_FILE]


def test_an_unwritable_record_costs_only_the_hashing(
    snapshots: Path, hashed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: Path, *args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "write_text", refuse)
    _load(snapshots)
    _load(snapshots)
    assert not (snapshots / "000001" / VERIFIED_FILE).exists()
    files = json.loads((snapshots / "000001" / "manifest.json").read_text())["files"]
    assert len(hashed) == 2 * len(files)


def test_a_damaged_record_is_ignored(snapshots: Path, hashed: list[str]) -> None:
    (snapshots / "000001" / VERIFIED_FILE).write_text("{not json")
    _load(snapshots)
    assert hashed  # hashed everything again, and rewrote the record
    hashed.clear()
    _load(snapshots)
    assert hashed == []
