"""The FAISS exact snapshot: export from the store, atomic publication, verified loading.

One snapshot is a directory ``<snapshots>/<NNNNNN>/``::

    index.faiss          faiss.IndexFlatIP over the L2-normalised vectors (row r = point r)
    ids.npy              uint8 [n, 16]: the point id (UUID bytes) of each row
    id_order.npy         int64 [n]: rows sorted by id bytes, for id -> row lookups
    payloads.jsonl       one compact JSON object per row (the display payload of a hit)
    payload_offsets.npy  uint64 [n + 1]: byte offset of each row's line in payloads.jsonl
    manifest.json        models, pipeline, dim, metric, count, source collection and its
                         write marker, creation time, sha256 and size of every file above

Publication: the export writes ``.partial-<NNNNNN>/``, fsyncs it, renames it to
``<NNNNNN>/`` and then replaces the small ``CURRENT`` file (the name of the live snapshot)
with ``os.replace``. A crash at any point leaves ``CURRENT`` naming the previous, complete
snapshot; leftover partial directories are removed by the next export. The newest
``snapshot.keep`` snapshots are kept.

Loading verifies the manifest, the checksums and the models (``ModelInfo.audio_key()``), and
memory-maps the index when it is large: ``faiss.IO_FLAG_MMAP_IFC`` maps the flat vectors
zero-copy, so a 3 GB index loads in milliseconds and shares the page cache between
processes; ids and offsets are mapped with ``np.load(mmap_mode="r")`` and payload lines are
decoded only for the hits returned.

Searching is exact: every stored vector is scored. The scan is one BLAS matrix-vector
product over the index's own vectors rather than FAISS's single-query loop, which runs on
one core while the scan is memory-bound (see :meth:`Snapshot._scan`).
"""

from timbre.store.snapshot.export import export_snapshot
from timbre.store.snapshot.layout import (
    CURRENT_FILE,
    DATA_FILES,
    EXPORT_LOCK_FILE,
    FORMAT_VERSION,
    IDS_FILE,
    INDEX_FILE,
    MANIFEST_FILE,
    METRIC,
    OFFSETS_FILE,
    ORDER_FILE,
    PAYLOADS_FILE,
    Freshness,
    SnapshotManifest,
    current_snapshot_name,
    freshness,
)
from timbre.store.snapshot.reader import Snapshot, load_snapshot

__all__ = [
    "CURRENT_FILE",
    "DATA_FILES",
    "EXPORT_LOCK_FILE",
    "FORMAT_VERSION",
    "IDS_FILE",
    "INDEX_FILE",
    "MANIFEST_FILE",
    "METRIC",
    "OFFSETS_FILE",
    "ORDER_FILE",
    "PAYLOADS_FILE",
    "Freshness",
    "Snapshot",
    "SnapshotManifest",
    "current_snapshot_name",
    "export_snapshot",
    "freshness",
    "load_snapshot",
]
