"""The exact snapshot: export from the store, atomic publication, verified loading, search.

One snapshot is a directory ``<snapshots>/<NNNNNN>/`` (format 2)::

    vectors.npy          float32 [n, dim]: the L2-normalised vectors (row r = point r)
    sq8_codes.npy        uint8 [n, dim]: FAISS 8-bit scalar-quantiser codes of the same rows
    sq8_params.npy       float32 [3, dim]: the quantiser (vmin, vdiff) and its measured
                         largest reconstruction error per dimension
    ids.npy              uint8 [n, 16]: the point id (UUID bytes) of each row
    id_order.npy         int64 [n]: rows sorted by id bytes, for id -> row lookups
    payloads.jsonl       one compact JSON object per row (the display payload of a hit)
    payload_offsets.npy  uint64 [n + 1]: byte offset of each row's line in payloads.jsonl
    columns/<field>.*    a filter column per indexed payload field (keyword or float)
    manifest.json        models, pipeline, dim, metric, count, columns, source collection and
                         its write marker, creation time, sha256 and size of every file above

Publication is atomic (:mod:`~.export`): a crash leaves ``CURRENT`` naming the previous,
complete snapshot. Loading verifies manifest, checksums, shapes and models (:mod:`~.reader`).
Searching is exact, filtered (:mod:`~.columns`) or not (:mod:`~.scan`).
"""

from timbre.store.snapshot.export import export_snapshot
from timbre.store.snapshot.layout import (
    CURRENT_FILE,
    DATA_FILES,
    EXPORT_LOCK_FILE,
    MANIFEST_FILE,
    PAYLOADS_FILE,
    SnapshotManifest,
    current_snapshot_name,
    freshness,
)
from timbre.store.snapshot.reader import Snapshot, load_snapshot
from timbre.store.snapshot.scan import ScanOptions, Selection

__all__ = [
    "CURRENT_FILE",
    "DATA_FILES",
    "EXPORT_LOCK_FILE",
    "MANIFEST_FILE",
    "PAYLOADS_FILE",
    "ScanOptions",
    "Selection",
    "Snapshot",
    "SnapshotManifest",
    "current_snapshot_name",
    "export_snapshot",
    "freshness",
    "load_snapshot",
]
