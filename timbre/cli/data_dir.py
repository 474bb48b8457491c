"""The rule that read commands never create a store.

Only commands that write an index (``ingest``, ``watch``, ``serve``, ``quickstart``) may
create one; a read command on a data dir without an index stops with exit code 2 and says
where it looked, instead of answering "0 results" from an empty store it has just made.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from timbre.errors import NoIndexError

if TYPE_CHECKING:
    from timbre.settings import Settings

LEGACY_DATA_DIR = Path("data")
"""The data dir of earlier versions: ``./data`` of the working directory."""


DEMO_DIR = "demo"
"""The demo's own data dir, inside the user's data dir (``timbre quickstart``)."""


def demo_data_dir(data_dir: Path) -> Path:
    return data_dir / DEMO_DIR


def _live_file(data_dir: Path) -> Path:
    from timbre.store import embedded_dir
    from timbre.store.edge import LIVE_FILE

    return embedded_dir(data_dir) / LIVE_FILE


def holds_index(settings: Settings) -> bool:
    """Whether the configured store holds an index (a server store is assumed to)."""
    if settings.qdrant.url is not None:
        return True  # shared by design; opening it reports a missing collection
    return _live_file(settings.data_dir).is_file()


def require_index(settings: Settings) -> None:
    """Raise NoIndexError on a data dir that holds no index, saying where to look instead."""
    if holds_index(settings):
        return

    data = settings.data_dir
    text = (
        f"no Timbre index in {data} (looked for {_live_file(data)}). Index a library first "
        "(`timbre ingest ~/Samples`), or point at the data dir that holds yours with "
        "TIMBRE_DATA_DIR=/path/to/data-dir"
    )
    elsewhere = []
    demo = demo_data_dir(data)
    if _live_file(demo).is_file():
        elsewhere.append(f"the quickstart demo is indexed in {demo} (TIMBRE_DATA_DIR='{demo}')")
    legacy = LEGACY_DATA_DIR.resolve()
    if legacy != data.resolve() and _live_file(legacy).is_file():
        elsewhere.append(
            f"an index in {legacy}, the data dir of earlier versions (TIMBRE_DATA_DIR='{legacy}')"
        )
    if elsewhere:
        text += ". Found: " + "; ".join(elsewhere)
    raise NoIndexError(text)
