"""An owner on a lease (``timbre mcp``) gives the embedded store up when another process asks;
one that does not promise it is still refused at once (tests/store/test_store_lock.py)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from timbre.errors import StoreLockedError
from timbre.store.lock import LEASE_SUFFIX, WANTED_SUFFIX, Lease, OwnerLock


def lock_at(path: Path) -> OwnerLock:
    return OwnerLock(path, what="The test store", remedy="Stop it.")


@pytest.fixture
def leased(tmp_path: Path) -> Iterator[tuple[OwnerLock, Lease]]:
    """A lock held on a lease (flock refuses a second handle even in the same process)."""
    path = tmp_path / "OWNER"
    lease = Lease(path, within_s=5.0)
    lease.announce()
    owner = lock_at(path)
    owner.acquire()
    yield owner, lease
    owner.release()
    lease.withdraw()


def let_go_when_asked(owner: OwnerLock, lease: Lease, asked: list[float]) -> threading.Thread:
    def watch() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if lease.wanted():
                asked.append(time.monotonic())
                owner.release()
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_leasing_owner_is_asked_and_the_waiter_gets_the_lock(
    leased: tuple[OwnerLock, Lease], tmp_path: Path
) -> None:
    owner, lease = leased
    asked: list[float] = []
    watcher = let_go_when_asked(owner, lease, asked)
    waiter = lock_at(owner.path)
    waiter.acquire()  # waits for the owner instead of being refused
    watcher.join()
    try:
        assert waiter.held and not owner.held
        assert len(asked) == 1  # it was asked, once
        assert not (tmp_path / f"OWNER{WANTED_SUFFIX}").exists()  # the request is withdrawn
        assert not lease.wanted()
    finally:
        waiter.release()


def test_an_owner_that_does_not_let_go_in_time_is_named_in_the_refusal(tmp_path: Path) -> None:
    path = tmp_path / "OWNER"
    lease = Lease(path, within_s=0.3)
    lease.announce()
    owner = lock_at(path)
    owner.acquire()
    try:
        started = time.monotonic()
        with pytest.raises(StoreLockedError) as err:
            lock_at(path).acquire()
        waited_s = time.monotonic() - started
    finally:
        owner.release()
    assert waited_s >= 0.3  # it waited as long as promised, then gave up
    assert "did not within 0.3 s" in str(err.value)
    assert "The test store is in use by process" in str(err.value)
    assert err.value.code == "store_locked"


def test_a_lease_of_another_pid_is_no_promise(tmp_path: Path) -> None:
    path = tmp_path / "OWNER"
    # Left by an earlier owner: the one holding the lock now promised nothing.
    (tmp_path / f"OWNER{LEASE_SUFFIX}").write_text(json.dumps({"pid": 1, "within_s": 5}))
    owner = lock_at(path)
    owner.acquire()
    try:
        started = time.monotonic()
        with pytest.raises(StoreLockedError):
            lock_at(path).acquire()
        assert time.monotonic() - started < 1.0  # refused at once, as without a lease
    finally:
        owner.release()


def test_a_dead_or_stale_request_is_not_wanted(tmp_path: Path) -> None:
    path = tmp_path / "OWNER"
    lease = Lease(path, within_s=5.0)
    wanted = tmp_path / f"OWNER{WANTED_SUFFIX}"
    assert not lease.wanted()
    wanted.write_text(json.dumps({"pid": 2**22 + 12345}))  # no such process
    assert not lease.wanted()
    wanted.write_text("not json")
    assert not lease.wanted()
    wanted.write_text(json.dumps({"pid": 1}))  # alive, but asked long ago
    old_s = time.time() - 60
    os.utime(wanted, (old_s, old_s))
    assert not lease.wanted()
    wanted.write_text(json.dumps({"pid": 1}))
    assert lease.wanted()


def test_withdraw_removes_only_its_own_lease(tmp_path: Path) -> None:
    path = tmp_path / "OWNER"
    lease_file = tmp_path / f"OWNER{LEASE_SUFFIX}"
    lease_file.write_text(json.dumps({"pid": 1, "within_s": 5}))
    Lease(path, within_s=1.0).withdraw()
    assert lease_file.exists()  # another process's promise
    lease = Lease(path, within_s=1.0)
    lease.announce()
    lease.withdraw()
    assert not lease_file.exists()
