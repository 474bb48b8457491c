"""The model bundle a data dir was built with, when ``timbre quickstart`` had to choose one.

Without a hub connection ``timbre quickstart`` writes a random-weight test bundle and indexes
with it. It records that choice in ``<data_dir>/models-bundle.json``, so that every later
command on the same data dir (``ingest``, ``search``, ``serve``, ``mcp``...) uses the same
models instead of trying the hub again and failing: vectors from two sets of models cannot
share an index. A configured bundle (``models.bundle``, ``TIMBRE_MODELS__BUNDLE``) always
wins over the record; deleting the file forgets it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path

RECORD_FILE = "models-bundle.json"

log = logging.getLogger("timbre.models")
_announced: set[Path] = set()


def record_bundle(data_dir: Path, bundle: Path, *, reason: str) -> Path:
    """Record ``bundle`` as the models of ``data_dir``; returns the record file.

    The path is stored relative to the data dir when it lies inside it, so a data dir that
    is moved or mounted elsewhere (a container volume) keeps finding its bundle.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    bundle = bundle.resolve()
    try:
        shown = str(bundle.relative_to(data_dir.resolve()))
    except ValueError:
        shown = str(bundle)
    record = {"bundle": shown, "random_weights": True, "reason": reason}
    fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=f".{RECORD_FILE}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(record, out, indent=1)
            out.write("\n")
        Path(tmp).replace(data_dir / RECORD_FILE)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise
    return data_dir / RECORD_FILE


def recorded_bundle(data_dir: Path) -> Path | None:
    """The bundle recorded in ``data_dir``, or None; says so (once per process) on stderr."""
    path = data_dir / RECORD_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring %s: unreadable (%s); delete it or rewrite it", path, exc)
        return None
    text = data.get("bundle") if isinstance(data, dict) else None
    if not isinstance(text, str) or not text:
        log.warning("ignoring %s: it names no bundle; delete it", path)
        return None
    bundle = data_dir / text  # an absolute path stays absolute
    if path not in _announced:
        _announced.add(path)
        log.warning(
            "using the random-weight test bundle %s that `timbre quickstart` recorded for "
            "this data dir in %s (%s): search results are meaningless. For the real models, "
            "use a new data dir (TIMBRE_DATA_DIR) where the hub is reachable, or set "
            "TIMBRE_MODELS__BUNDLE to a bundle from `timbre models download`",
            bundle,
            path,
            data.get("reason", "no hub connection"),
        )
    return bundle


def random_bundle_dir(data_dir: Path) -> Path:
    """Where ``timbre quickstart`` writes its random-weight test bundle."""
    return data_dir / "models" / "random-tiny"
