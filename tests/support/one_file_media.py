"""A :class:`MediaService` over one real audio file, without an index: what the renditions
tests and ``bench/bench_stretch.py`` audition and time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from timbre.search.media import MediaService


class _OneFile:
    """The two calls MediaService makes of the library, over one real file."""

    def __init__(self, path: Path, payload: dict[str, Any]) -> None:
        self.path, self.payload = path, payload

    def item(self, item_id: str) -> dict[str, Any]:
        return self.payload

    def item_file(self, item_id: str) -> Path:
        return self.path


def one_file_media(path: Path, payload: dict[str, Any], cache: Path) -> MediaService:
    """Every item id is ``path`` with ``payload``; renditions cached under ``cache``."""
    return MediaService(
        _OneFile(path, payload),  # type: ignore[arg-type]
        cache,
        max_file_bytes=1 << 30,
        max_duration_s=600,
        rendition_cache_bytes=1 << 30,
    )
