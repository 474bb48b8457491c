"""The snapshot directory layout (:mod:`timbre.store.snapshot`): file names, the manifest, and
what both the writer and the reader read."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from timbre.errors import SnapshotError
from timbre.store.collection import Collection
from timbre.store.records import WriteMarker

FORMAT_VERSION = 2
"""2: float32 vectors, SQ8 codes and one filter column per indexed payload field."""
METRIC = "inner_product"
CURRENT_FILE = "CURRENT"
EXPORT_LOCK_FILE = "EXPORT.lock"
PARTIAL_PREFIX = ".partial-"
VECTORS_FILE = "vectors.npy"
CODES_FILE = "sq8_codes.npy"
QUANTISER_FILE = "sq8_params.npy"
IDS_FILE = "ids.npy"
ORDER_FILE = "id_order.npy"
PAYLOADS_FILE = "payloads.jsonl"
OFFSETS_FILE = "payload_offsets.npy"
MANIFEST_FILE = "manifest.json"
DATA_FILES = (
    VECTORS_FILE,
    CODES_FILE,
    QUANTISER_FILE,
    IDS_FILE,
    ORDER_FILE,
    PAYLOADS_FILE,
    OFFSETS_FILE,
)
"""The files every snapshot has; column files (``columns/...``) come on top, per field."""
COLUMNS_DIR = "columns"
QUANTISER = "sq8"
NAME_PATTERN = re.compile(r"\d{6,}")
FILE_NAME_PATTERN = re.compile(r"(columns/)?[A-Za-z0-9_][A-Za-z0-9_.-]*")
"""Names a manifest may list: inside the snapshot directory, never outside it."""


@dataclass(frozen=True)
class SnapshotManifest:
    """What a snapshot holds and where it came from (``manifest.json``): ``source_write`` is the
    collection's write marker when the export started; ``files`` maps names to ``{"sha256",
    "bytes"}``; ``code_radius`` (:mod:`~.quantiser`) is None in older snapshots."""

    name: str
    created_at: str
    model: dict[str, Any]
    audio_key: dict[str, Any]
    pipeline_version: str
    dim: int
    metric: str
    count: int
    source_mode: str
    source_collection: str
    source_write: WriteMarker
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)
    quantiser: str = QUANTISER
    format_version: int = FORMAT_VERSION
    code_radius: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SnapshotManifest:
        data = json.loads(text)
        data["source_write"] = WriteMarker(**data["source_write"])
        return cls(**data)


@dataclass(frozen=True)
class Freshness:
    """How far a snapshot lags the live collection (source collection, count, write marker)."""

    snapshot: str
    snapshot_collection: str
    live_collection: str
    snapshot_count: int
    live_count: int
    snapshot_write_seq: int
    live_write_seq: int
    snapshot_created_at: str
    live_last_write_at: str | None

    @property
    def same_collection(self) -> bool:
        return self.snapshot_collection == self.live_collection

    @property
    def count_lag(self) -> int:
        """Points the live collection has beyond the snapshot (negative after deletions)."""
        return self.live_count - self.snapshot_count

    @property
    def writes_behind(self) -> int | None:
        """Write operations since the export started; None if the live collection changed."""
        return self.live_write_seq - self.snapshot_write_seq if self.same_collection else None

    @property
    def is_current(self) -> bool:
        """True when the snapshot holds exactly what the live collection holds."""
        return self.writes_behind == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "same_collection": self.same_collection,
            "count_lag": self.count_lag,
            "writes_behind": self.writes_behind,
            "is_current": self.is_current,
        }


def current_snapshot_name(snapshots: Path) -> str | None:
    """Name of the published snapshot (what ``CURRENT`` says), None if there is none yet."""
    try:
        name = (snapshots / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SnapshotError(f"cannot read {snapshots / CURRENT_FILE}: {exc.strerror}") from exc
    if not name:
        return None
    # Only a snapshot folder of this directory: a CURRENT rewritten to point elsewhere
    # ("../../other/snapshots/...", a symlinked folder) would serve another library's data.
    folder = snapshots / name
    inside = NAME_PATTERN.fullmatch(name) is not None and (
        not folder.exists() or folder.resolve().parent == snapshots.resolve()
    )
    if not inside:
        raise SnapshotError(
            f"{snapshots / CURRENT_FILE} names {name!r}, which is not a snapshot folder of "
            f"{snapshots} (a six-digit name, not a link elsewhere); refused. Write the name of "
            "one of its snapshots into it, or run `timbre store snapshot` to publish a new one."
        )
    return name


def published_names(snapshots: Path) -> list[str]:
    if not snapshots.is_dir():
        return []
    return sorted(
        p.name for p in snapshots.iterdir() if p.is_dir() and NAME_PATTERN.fullmatch(p.name)
    )


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def id_keys(ids: np.ndarray) -> np.ndarray:
    """Row ids as one sortable 16-byte string each (raw bytes compare like the UUIDs)."""
    return np.ascontiguousarray(ids).view("S16").ravel()


def freshness(snapshot: SnapshotManifest, live: Collection) -> Freshness:
    """How far ``snapshot`` lags the live collection (count and write marker)."""
    info = live.describe()
    return Freshness(
        snapshot=snapshot.name,
        snapshot_collection=snapshot.source_collection,
        live_collection=info.name,
        snapshot_count=snapshot.count,
        live_count=live.count(),
        snapshot_write_seq=snapshot.source_write.seq,
        live_write_seq=info.last_write.seq,
        snapshot_created_at=snapshot.created_at,
        live_last_write_at=info.last_write.at,
    )
