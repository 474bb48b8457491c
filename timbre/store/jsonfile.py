"""The embedded store's small JSON files (``LIVE``, ``collection.json``), replaced atomically."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from timbre.errors import StoreError
from timbre.fsutil import atomic_write


def write_json(path: Path, data: Mapping[str, Any], *, durable: bool) -> None:
    """Replace ``path`` atomically (a reader sees the old or the new file, never half of one).

    Args:
        path: the file to replace.
        data: its new content.
        durable: fsync the file and its directory, so that the change survives a power cut.
    """
    atomic_write(path, json.dumps(data, indent=1), durable=durable)


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``.

    Raises:
        StoreError: the file cannot be read or does not hold a JSON object.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise StoreError(f"{path} does not hold a JSON object")
    return data
