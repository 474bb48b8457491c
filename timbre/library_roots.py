"""The library roots a data dir indexes, recorded by ingest and read by the service.

``timbre ingest`` records each root it indexed (not in a dry run) in
``<data_dir>/library_roots.json``. ``timbre serve`` on that data dir accepts these roots
beside the configured ``api.library_roots``, so a service started on an indexed data dir
takes ingest jobs for (and streams files of) the libraries it already holds with no extra
setting. A new library still has to be named in ``api.library_roots``: the service never
widens what it accepts on its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from timbre.store.pathtext import path_from_text, path_text

ROOTS_FILE = "library_roots.json"


def recorded_roots(data_dir: Path) -> list[Path]:
    """The roots ingest recorded in ``data_dir`` (none when nothing was recorded)."""
    try:
        data = json.loads((data_dir / ROOTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    texts = data.get("roots") if isinstance(data, dict) else None
    if not isinstance(texts, list):
        return []
    return [path_from_text(t) for t in texts if isinstance(t, str) and t]


def record_roots(data_dir: Path, roots: Iterable[Path]) -> None:
    """Add ``roots`` (resolved) to the recorded ones; written atomically."""
    known = [path_text(p) for p in recorded_roots(data_dir)]
    for root in roots:
        text = path_text(os.path.realpath(Path(root).expanduser()))
        if text not in known:
            known.append(text)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=f".{ROOTS_FILE}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"roots": sorted(known)}, out, indent=1)
            out.write("\n")
        Path(tmp).replace(data_dir / ROOTS_FILE)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise
