"""The random-weight bundle ``timbre quickstart`` indexed a data dir with, when the hub was out,
recorded so every later command there uses the same models (unless ``models.bundle`` is set)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from timbre.fsutil import atomic_write

RECORD_FILE = "models-bundle.json"

log = logging.getLogger("timbre.models")
_announced: set[Path] = set()


def record_bundle(data_dir: Path, bundle: Path, *, reason: str) -> Path:
    """Record ``bundle`` as the models of ``data_dir`` (relative to it when inside, so a moved
    data dir keeps finding it); returns the record file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    bundle = bundle.resolve()
    try:
        shown = str(bundle.relative_to(data_dir.resolve()))
    except ValueError:
        shown = str(bundle)
    record = {"bundle": shown, "random_weights": True, "reason": reason}
    atomic_write(data_dir / RECORD_FILE, json.dumps(record, indent=1) + "\n", private=True)
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
