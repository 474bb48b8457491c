"""Single-owner locks on directories, naming the owner when someone else tries.

An advisory ``flock`` on a small file, which also records the owner (pid, command, host,
since): the kernel releases it when the owner dies, so a crash never leaves a stale lock, and
a second process is refused at once. POSIX only.

An owner may hold its lock on a :class:`Lease` instead (``timbre mcp``): it promises to give
the lock up within ``within_s`` of being asked, and a refused process asks (a ``.wanted`` file
beside the lock) and waits that long instead of being refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shlex
import socket
import sys
import time
from pathlib import Path
from typing import IO, Any

import psutil

from timbre.errors import StoreLockedError
from timbre.fsutil import now_iso

log = logging.getLogger("timbre.store")

LEASE_SUFFIX = ".lease"
"""Beside a lock file: its owner gives the lock up when asked (pid, within_s)."""
WANTED_SUFFIX = ".wanted"
"""Beside a lock file: a process waits for the lock and asks its leasing owner to let go."""

_ASK_POLL_S = 0.05  # how often a waiting process tries the lock again


class OwnerLock:
    """An exclusive, non-blocking lock on ``path`` held by this process until :meth:`release`;
    ``what`` it protects and the ``remedy`` of a refused process go into the error message."""

    def __init__(self, path: Path, *, what: str, remedy: str) -> None:
        self.path = path
        self._what = what
        self._remedy = remedy
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock, or raise StoreLockedError naming the owner. An owner on a
        :class:`Lease` is asked to let go and waited for, as long as it promised."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        owner = self._take()
        if owner is None:
            return
        within_s = Lease(self.path, within_s=0.0).promised_by(owner)
        if within_s is None:
            raise StoreLockedError(self._refusal(owner))
        wanted = self.path.with_name(self.path.name + WANTED_SUFFIX)
        wanted.write_text(json.dumps(_me()), encoding="utf-8")
        log.info(
            "%s is held on a lease by process %s (`%s`): asked it to let go, waiting up to %g s",
            self._what,
            owner.get("pid", "unknown"),
            owner.get("command") or "unknown command",
            within_s,
        )
        deadline = time.monotonic() + within_s
        try:
            while owner is not None and time.monotonic() < deadline:
                time.sleep(_ASK_POLL_S)
                owner = self._take()
        finally:
            wanted.unlink(missing_ok=True)
        if owner is not None:
            raise StoreLockedError(
                f"{self._refusal(owner)} It holds it on a lease and was asked to let it go, "
                f"but did not within {within_s:g} s."
            )

    def _take(self) -> dict[str, Any] | None:
        """Take the lock if it is free; else the owner's record (and nothing is held)."""
        # "a+" creates the file without truncating the owner's record before we hold the lock.
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_owner(handle)
            handle.close()
            return owner
        handle.seek(0)
        handle.truncate()
        json.dump(_me(), handle)
        handle.flush()
        self._file = handle
        return None

    def release(self) -> None:
        """Give the lock up (closing the file releases the flock)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def _refusal(self, owner: dict[str, Any]) -> str:
        pid = owner.get("pid", "unknown")
        command = owner.get("command") or "unknown command"
        where = f" on {owner['host']}" if owner.get("host") else ""
        since = f" since {owner['since']}" if owner.get("since") else ""
        mine = (
            " (this very process: open it once and share the object)" if pid == os.getpid() else ""
        )
        return (
            f"{self._what} is in use by process {pid}{where}{mine} running `{command}`{since}. "
            f"{self._remedy}"
        )


def _command_line() -> str:
    # The real command line (``python -m app ...``), which sys.argv rewrites for ``-m``.
    with contextlib.suppress(psutil.Error, OSError):
        return shlex.join(psutil.Process().cmdline())
    return shlex.join([sys.executable, *sys.argv])


def _me() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "command": _command_line(),
        "host": socket.gethostname(),
        "since": now_iso(),
    }


def _read_owner(handle: IO[str]) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        handle.seek(0)
        owner = json.loads(handle.read() or "{}")
        if isinstance(owner, dict):
            return owner
    return {}  # the owner is between taking the lock and writing its record


class Lease:
    """An owner's promise, beside its lock file, to give the lock up within ``within_s`` (its
    longest use) of being asked; and the asking, seen from the owner."""

    def __init__(self, lock_path: Path, *, within_s: float) -> None:
        self.path = lock_path.with_name(lock_path.name + LEASE_SUFFIX)
        self._wanted = lock_path.with_name(lock_path.name + WANTED_SUFFIX)
        self.within_s = within_s

    def announce(self) -> None:
        """Promise it, before taking the lock, so that no one is refused in between."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(
            json.dumps({"pid": os.getpid(), "within_s": self.within_s}), encoding="utf-8"
        )

    def withdraw(self) -> None:
        """Take the promise back (this process will not take the lock again)."""
        with contextlib.suppress(OSError, ValueError):
            if json.loads(self.path.read_text(encoding="utf-8")).get("pid") == os.getpid():
                self.path.unlink()

    def wanted(self) -> bool:
        """Whether a live process is waiting for the lock now."""
        try:
            age_s = time.time() - self._wanted.stat().st_mtime
            pid = int(json.loads(self._wanted.read_text(encoding="utf-8"))["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        # A waiter gives up after the promised time; an older request is a dead one's.
        return age_s <= self.within_s + 1.0 and _alive(pid)

    def promised_by(self, owner: dict[str, Any]) -> float | None:
        """How long ``owner`` (a lock record) promised to take to let go, if it did."""
        try:
            lease = json.loads(self.path.read_text(encoding="utf-8"))
            if lease["pid"] == owner.get("pid"):
                return max(0.0, float(lease["within_s"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
