"""Single-owner locks on directories, naming the owner when someone else tries.

An advisory ``flock`` on a small file: the kernel releases it when the owning process exits
or is killed, so a crash never leaves a stale lock, and a second process is refused at once
instead of waiting. The file also holds who owns it (pid, command, host, since when), read by
the refused process to say so. POSIX only (Linux and macOS), like the rest of the deployment.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import psutil

from timbre.errors import StoreLockedError


class OwnerLock:
    """An exclusive, non-blocking lock held by this process until :meth:`release`.

    Args:
        path: the lock file (created if missing).
        what: what the lock protects, for the error message.
        remedy: what the refused process should do, for the error message.
    """

    def __init__(self, path: Path, *, what: str, remedy: str) -> None:
        self.path = path
        self._what = what
        self._remedy = remedy
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock.

        Raises:
            StoreLockedError: another process (or another handle in this one) holds it; the
                message names its pid and command and what to do.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # "a+" creates the file without truncating the owner's record before we hold the lock.
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            owner = _read_owner(handle)
            handle.close()
            raise StoreLockedError(self._refusal(owner)) from exc
        handle.seek(0)
        handle.truncate()
        json.dump(_me(), handle)
        handle.flush()
        self._file = handle

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
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _read_owner(handle: IO[str]) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        handle.seek(0)
        owner = json.loads(handle.read() or "{}")
        if isinstance(owner, dict):
            return owner
    return {}  # the owner is between taking the lock and writing its record
