"""Only one process owns an embedded store; the next one is told who, at once."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.store_factory import make_dataset, open_test_store, spawn_child, wait_for_line
from timbre.errors import StoreLockedError


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A second process that owns the embedded store under tmp_path (with 20 points in it)."""
    store = open_test_store("edge", tmp_path)
    store.live().upsert(make_dataset(20, seed=5).points)
    store.close()
    child = spawn_child("hold", tmp_path)
    wait_for_line(child, "ready")
    yield child
    if child.poll() is None:
        child.kill()
    child.wait()


def test_a_second_process_is_refused_at_once_and_told_who_holds_it(
    holder: subprocess.Popen[str], tmp_path: Path
) -> None:
    started = time.monotonic()
    with pytest.raises(StoreLockedError) as err:
        open_test_store("edge", tmp_path)
    assert time.monotonic() - started < 5  # refused, not queued
    message = str(err.value)
    assert f"process {holder.pid}" in message
    assert "tests.support.store_factory hold" in message  # the holder's command
    assert "TIMBRE_QDRANT__URL" in message  # and what to do
    assert err.value.code == "store_locked"


def test_the_store_opens_intact_once_the_holder_is_killed(
    holder: subprocess.Popen[str], tmp_path: Path
) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    store = open_test_store("edge", tmp_path)  # the kernel dropped the lock with the process
    try:
        assert store.live().count() == 20
    finally:
        store.close()


def test_the_same_process_cannot_open_it_twice(tmp_path: Path) -> None:
    store = open_test_store("edge", tmp_path)
    try:
        with pytest.raises(StoreLockedError, match="this very process"):
            open_test_store("edge", tmp_path)
    finally:
        store.close()
    open_test_store("edge", tmp_path).close()  # closing released it
