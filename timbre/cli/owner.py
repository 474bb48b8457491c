"""Who serves a data dir: the one ``timbre serve`` lock and the ``service.json`` announcement.

Kept free of the model stack, so a second ``timbre serve`` is refused at once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from timbre.fsutil import atomic_write
from timbre.settings import Settings
from timbre.store.lock import OwnerLock

SERVICE_FILE = "service.json"
"""Written in the data dir by a running service: how other commands reach it."""

SERVICE_LOCK_FILE = "service.lock"
"""Held by the one ``timbre serve`` of a data dir for as long as it runs."""


def claim_data_dir(settings: Settings) -> OwnerLock:
    """Make this process the one service of the data dir, before anything is written there
    (StoreLockedError, touching nothing, while another ``timbre serve`` runs on it)."""
    lock = OwnerLock(
        settings.data_dir / SERVICE_LOCK_FILE,
        what=f"the data dir {settings.data_dir}",
        remedy="One `timbre serve` per data dir: use that service, stop it first, or start "
        "this one on another data dir (TIMBRE_DATA_DIR).",
    )
    lock.acquire()
    return lock


def write_service_file(settings: Settings, url: str) -> Path:
    """Announce this service (call only while holding :func:`claim_data_dir`'s lock)."""
    path = settings.data_dir / SERVICE_FILE
    atomic_write(path, json.dumps({"url": url, "pid": os.getpid()}) + "\n", mkdir=True)
    return path


def remove_service_file(settings: Settings) -> None:
    """Withdraw this process's announcement, and only its own."""
    path = settings.data_dir / SERVICE_FILE
    try:
        mine = json.loads(path.read_text()).get("pid") == os.getpid()
    except (OSError, ValueError, AttributeError):
        return
    if mine:
        path.unlink(missing_ok=True)


def read_service_file(settings: Settings) -> dict[str, Any] | None:
    """The running service's address, if one has announced itself and is still alive."""
    path = settings.data_dir / SERVICE_FILE
    try:
        data = json.loads(path.read_text())
        os.kill(int(data["pid"]), 0)
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
