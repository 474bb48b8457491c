"""Events to batches: debounce, settle, bounded batches, gone paths last (a pure clock)."""

from __future__ import annotations

from pathlib import Path

from ingest.watch import check_root, inotify_problem
from ingest.watch_batch import Batch, ChangeBatcher, Signature, hidden, list_files


class Disk:
    """A file system view the test controls: path -> (size, mtime, is a folder)."""

    def __init__(self) -> None:
        self.files: dict[str, Signature] = {}
        self.folders: dict[str, list[str]] = {}

    def look(self, path: str) -> Signature | None:
        if path in self.folders:
            return 0, 0, True
        return self.files.get(path)

    def lister(self, folder: str) -> list[str]:
        return self.folders[folder]


def _batcher(disk: Disk, *, debounce_s: float = 1.0, settle_s: float = 1.0, most: int = 100):
    return ChangeBatcher(debounce_s, settle_s, most, look=disk.look, lister=disk.lister)


def test_a_file_is_taken_once_quiet_and_settled_and_not_before() -> None:
    disk = Disk()
    b = _batcher(disk)
    disk.files["/lib/a.wav"] = (10, 1, False)
    b.saw("/lib/a.wav", 0.0)
    assert b.take(0.5) is None  # still within the debounce
    assert b.take(1.0) is None  # first look: settling starts now
    assert b.pending == 1
    assert b.take(2.0) == Batch(changed=("/lib/a.wav",))
    assert b.pending == 0 and b.take(10.0) is None  # handed out once


def test_a_file_still_growing_waits_until_its_size_stops_changing() -> None:
    disk = Disk()
    b = _batcher(disk, debounce_s=0.5, settle_s=1.0)
    b.saw("/lib/slow.wav", 0.0)
    for step in range(1, 6):  # written in chunks, each pause longer than the debounce
        disk.files["/lib/slow.wav"] = (step * 100, step, False)
        assert b.take(step * 0.9) is None
    assert b.take(4.5 + 1.0) == Batch(changed=("/lib/slow.wav",))


def test_an_event_during_settling_starts_it_again() -> None:
    disk = Disk()
    b = _batcher(disk)
    disk.files["/lib/a.wav"] = (10, 1, False)
    b.saw("/lib/a.wav", 0.0)
    assert b.take(1.0) is None
    b.saw("/lib/a.wav", 1.5)
    assert b.take(2.1) is None  # quiet again only from 2.5
    assert b.take(2.6) is None  # looked at again: settles from 2.6
    assert b.take(3.6) == Batch(changed=("/lib/a.wav",))


def test_a_big_drop_becomes_bounded_batches_and_gone_paths_leave_with_the_last() -> None:
    disk = Disk()
    b = _batcher(disk, debounce_s=0.0, settle_s=0.0, most=4)
    names = [f"/lib/new/{i:02d}.wav" for i in range(10)]
    disk.folders["/lib/new"] = names
    for name in names:
        disk.files[name] = (1, 1, False)
    b.saw("/lib/old", 0.0)  # renamed to /lib/new: one "gone" and one folder event
    b.saw("/lib/new", 0.0)
    assert b.take(0.0) is None  # the folder is listed; its files still have to be looked at
    first, second, third = b.take(0.1), b.take(0.2), b.take(0.3)
    assert first == Batch(changed=tuple(names[:4]))  # the old paths stay until the end
    assert second == Batch(changed=tuple(names[4:8]))
    assert third == Batch(changed=tuple(names[8:]), gone=("/lib/old",))
    assert b.take(0.4) is None


def test_a_folder_is_not_listed_while_files_below_it_are_still_arriving() -> None:
    disk = Disk()
    b = _batcher(disk, debounce_s=1.0, settle_s=0.0)
    disk.folders["/lib/pack"] = ["/lib/pack/a.wav", "/lib/pack/b.wav"]
    disk.files["/lib/pack/a.wav"] = disk.files["/lib/pack/b.wav"] = (1, 1, False)
    b.saw("/lib/pack", 0.0)
    b.saw("/lib/pack/a.wav", 0.9)
    assert b.take(1.2) is None  # the folder waits for a.wav's quiet time
    assert b.take(2.0) == Batch(changed=("/lib/pack/a.wav",))
    # Listed once quiet: a.wav comes again, which costs a hash cache look (size+mtime).
    assert b.take(2.1) is None  # listed: its files are looked at next
    assert b.take(2.2) == Batch(changed=("/lib/pack/a.wav", "/lib/pack/b.wav"))


def test_gone_folders_cover_their_files_and_a_file_written_again_is_changed() -> None:
    disk = Disk()
    b = _batcher(disk, debounce_s=0.0, settle_s=0.0)
    for path in ("/lib/x/1.wav", "/lib/x", "/lib/y.wav"):
        b.saw(path, 0.0)
    assert b.take(0.0) == Batch(gone=("/lib/x", "/lib/y.wav"))
    b.saw("/lib/z.wav", 1.0)  # deleted...
    assert b.take(1.0) == Batch(gone=("/lib/z.wav",))
    b.saw("/lib/z.wav", 2.0)  # ...and written again
    disk.files["/lib/z.wav"] = (5, 5, False)
    assert b.take(2.0) == Batch(changed=("/lib/z.wav",))


def test_a_batch_given_back_comes_first_next_time() -> None:
    disk = Disk()
    b = _batcher(disk, debounce_s=0.0, settle_s=0.0)
    disk.files["/lib/a.wav"] = disk.files["/lib/b.wav"] = (1, 1, False)
    b.saw("/lib/a.wav", 0.0)
    batch = b.take(0.0)
    assert batch == Batch(changed=("/lib/a.wav",))
    b.give_back(batch)
    b.saw("/lib/b.wav", 0.1)
    assert b.take(0.2) == Batch(changed=("/lib/a.wav", "/lib/b.wav"))


def test_hidden_paths_and_listing(tmp_path: Path) -> None:
    assert hidden("/lib/.sync/a.wav", ["/lib"]) and hidden("/lib/p/.a.wav.part", ["/lib"])
    assert not hidden("/lib/p/a.wav", ["/lib"]) and not hidden("/other/.x", ["/lib"])
    (tmp_path / "p" / ".cache").mkdir(parents=True)
    (tmp_path / "p" / "a.wav").write_bytes(b"")
    (tmp_path / "p" / ".cache" / "b.wav").write_bytes(b"")
    (tmp_path / ".c.wav").write_bytes(b"")
    assert list_files(str(tmp_path)) == [str(tmp_path / "p" / "a.wav")]


def test_unreadable_and_empty_roots_are_not_watched(tmp_path: Path) -> None:
    empty = tmp_path / "mnt"
    empty.mkdir()
    state = check_root(str(empty))
    assert not state.available and "unplugged" in (state.problem or "")
    assert not check_root(str(tmp_path / "nowhere")).available
    (empty / "a.wav").write_bytes(b"")
    assert check_root(str(empty)).available


def test_the_inotify_limit_is_detected_with_the_fix(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"d{i}").mkdir()
    limit = tmp_path / "max_user_watches"
    limit.write_text("3\n")
    problem = inotify_problem([str(tmp_path)], limit)
    assert problem is not None and "6 folders" in problem
    assert "fs.inotify.max_user_watches" in problem and "sysctl" in problem
    limit.write_text("524288\n")
    assert inotify_problem([str(tmp_path)], limit) is None
    assert inotify_problem([str(tmp_path)], tmp_path / "absent") is None
