"""Timbre's metadata of a collection: who built it, when it went live, its write marker."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from timbre.fsutil import now_iso
from timbre.store.interface import WriteMarker
from timbre.store.payload import DERIVED_VERSION

META_KEYS = (
    "model",
    "audio_key",
    "schema_version",
    "created_at",
    "published_at",
    "write_seq",
    "last_write_at",
    "derived_version",
    "labels_version",
)
"""Collection metadata Timbre keeps (Qdrant collection metadata / the embedded JSON file)."""


def utc_now() -> str:
    """The time now, ISO 8601 UTC (how every time in the metadata is written)."""
    return now_iso("auto")


def new_meta(
    info_dict: Mapping[str, Any], audio_key: Mapping[str, Any], schema_version: int
) -> dict[str, Any]:
    """Metadata of a collection created now."""
    return {
        "model": dict(info_dict),
        "audio_key": dict(audio_key),
        "schema_version": schema_version,
        "created_at": utc_now(),
        "published_at": None,
        "write_seq": 0,
        "last_write_at": None,
        # Written through upsert, so every payload carries the current derivation.
        "derived_version": DERIVED_VERSION,
        "labels_version": None,
    }


def write_marker(meta: Mapping[str, Any]) -> WriteMarker:
    """The write marker recorded in a collection's metadata."""
    return WriteMarker(int(meta.get("write_seq") or 0), meta.get("last_write_at"))
