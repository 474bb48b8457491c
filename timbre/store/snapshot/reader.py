"""Loading and searching a published snapshot, verified against its manifest and models.

Large snapshots are memory-mapped (fast to load, page cache shared between processes); payload
lines are decoded only for the hits returned.
"""

from __future__ import annotations

import json
import mmap
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from timbre.embedding.info import ModelInfo, family_of_key
from timbre.errors import ModelMismatchError, SnapshotError, SnapshotNotFoundError
from timbre.fsutil import sha256_file
from timbre.store.filters import SearchFilter
from timbre.store.records import Hit, check_vector
from timbre.store.snapshot.arrays import RowReader, load_array
from timbre.store.snapshot.columns import Columns, column_files
from timbre.store.snapshot.layout import (
    CODES_FILE,
    DATA_FILES,
    FILE_NAME_PATTERN,
    FORMAT_VERSION,
    IDS_FILE,
    MANIFEST_FILE,
    METRIC,
    OFFSETS_FILE,
    ORDER_FILE,
    PAYLOADS_FILE,
    QUANTISER,
    QUANTISER_FILE,
    VECTORS_FILE,
    SnapshotManifest,
    current_snapshot_name,
    id_keys,
)
from timbre.store.snapshot.quantiser import Sq8, code_radius
from timbre.store.snapshot.scan import FlatScan, QuantisedScan, ScanOptions, Selection
from timbre.store.snapshot.verified import VerifiedFiles, identity


class Snapshot:
    """A loaded, verified snapshot: exact inner-product search without calling Qdrant.
    Thread-safe (read-only files; scans take turns); one per process, replaced when
    :func:`current_snapshot_name` changes."""

    def __init__(
        self,
        *,
        directory: Path,
        manifest: SnapshotManifest,
        scan: FlatScan,
        columns: Columns,
        ids: np.ndarray,
        order: np.ndarray,
        offsets: np.ndarray,
        payloads: mmap.mmap | bytes,
        mmapped: bool,
    ) -> None:
        self.directory = directory
        self.manifest = manifest
        self.mmapped = mmapped
        self.scan = scan
        self.columns = columns
        self._vectors = scan.vectors
        self._ids = ids
        self._order = order
        self._sorted_keys = id_keys(ids)[order] if len(ids) else np.empty(0, dtype="S16")
        self._offsets = offsets
        self._payloads = payloads
        self._scan_lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.manifest.name

    def __len__(self) -> int:
        return len(self._vectors)

    def select(self, filter: SearchFilter) -> Selection | None:
        """The rows ``filter`` lets through, or None if a condition has no column here."""
        mask = self.columns.mask(filter.conditions())
        return None if mask is None else Selection(mask)

    def search(
        self, vector: np.ndarray, top_k: int, offset: int = 0, selection: Selection | None = None
    ) -> list[Hit]:
        """The ``top_k`` nearest points by inner product after skipping ``offset``, best first,
        among the rows of ``selection`` (:meth:`select`; None = every row)."""
        if top_k < 1 or offset < 0:
            raise ValueError(f"top_k must be >= 1 and offset >= 0 (got {top_k}, {offset})")
        query = check_vector(vector, self.manifest.dim, "query")
        available = len(self) if selection is None else selection.count
        k = min(top_k + offset, available)
        if k <= offset:
            return []
        scores, rows = self._scan(query, k, selection)
        return [
            Hit(self._id_of(int(row)), float(score), self._payload_of(int(row)))
            for score, row in zip(scores[offset:], rows[offset:], strict=True)
        ]

    def _scan(
        self, query: np.ndarray, k: int, selection: Selection | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` (scores, rows), best first, ties by row: deterministic. One scan at
        a time: concurrent scans fight over the same memory bandwidth and cores."""
        with self._scan_lock:
            return self.scan.top(query, k, selection)

    def row(self, point_id: str) -> int | None:
        """The FAISS row of a point, None if the snapshot does not hold it."""
        key = np.array(uuid.UUID(point_id).bytes, dtype="S16")
        pos = int(np.searchsorted(self._sorted_keys, key))
        if pos < len(self._sorted_keys) and self._sorted_keys[pos] == key:
            return int(self._order[pos])
        return None

    def vector(self, point_id: str) -> np.ndarray | None:
        """The indexed vector of a point (for audio-by-id queries), None if unknown."""
        row = self.row(point_id)
        return None if row is None else self.scan.rows_of(np.array([row]))[0]

    def payload(self, point_id: str) -> dict[str, Any] | None:
        """The display payload of a point, None if unknown."""
        row = self.row(point_id)
        return None if row is None else self._payload_of(row)

    def ids(self) -> Iterable[str]:
        """Every point id, in row order."""
        return (self._id_of(r) for r in range(len(self)))

    def _id_of(self, row: int) -> str:
        return str(uuid.UUID(bytes=self._ids[row].tobytes()))

    def _payload_of(self, row: int) -> dict[str, Any]:
        start, end = int(self._offsets[row]), int(self._offsets[row + 1])
        payload: dict[str, Any] = json.loads(self._payloads[start:end])
        return payload

    def close(self) -> None:
        """Let go of the mapped files (searching afterwards is an error)."""
        if isinstance(self._payloads, mmap.mmap):
            self._payloads.close()


def load_snapshot(
    snapshots: Path,
    info: ModelInfo,
    *,
    mmap_min_bytes: int,
    verify_checksums: bool = True,
    reverify_unchanged: bool = False,
    name: str | None = None,
    scan: ScanOptions | None = None,
) -> Snapshot:
    """Load the published snapshot (or ``name``), verified, for the models ``info``.

    Arrays are memory-mapped when ``vectors.npy`` has ``mmap_min_bytes``; checksums are checked
    once and whenever a file changes (:mod:`~.verified`); ``scan`` None = always the flat exact
    scan. Raises SnapshotNotFoundError, SnapshotError (incomplete, corrupt, inconsistent) or
    ModelMismatchError.
    """
    name = name or current_snapshot_name(snapshots)
    if name is None:
        raise SnapshotNotFoundError(f"no snapshot has been published in {snapshots} yet")
    directory = snapshots / name
    manifest = _read_manifest(directory)
    theirs = family_of_key(manifest.audio_key)
    if theirs != info.family:
        raise ModelMismatchError(
            f"snapshot {name} holds vectors of the {theirs} model family, but models.family is "
            f"{info.family}: vectors of two families cannot be compared; set models.family to "
            f"{theirs}, or re-index with {info.family}"
        )
    if manifest.audio_key != info.audio_key():
        raise ModelMismatchError(
            f"snapshot {name} was built by {manifest.audio_key}, but the loaded models are "
            f"{info.audio_key()}; export a new snapshot from a collection built by these models"
        )
    verified = VerifiedFiles(directory) if verify_checksums else None
    _check_files(directory, manifest, verified, reverify_unchanged)
    mmapped = (directory / VECTORS_FILE).stat().st_size >= mmap_min_bytes
    quantised = scan is not None and manifest.count >= scan.quantised_min_vectors
    try:
        vectors = load_array(directory / VECTORS_FILE, mmapped=mmapped)
        ids = load_array(directory / IDS_FILE, mmapped=mmapped)
        order = load_array(directory / ORDER_FILE, mmapped=mmapped)
        offsets = load_array(directory / OFFSETS_FILE, mmapped=mmapped)
        params = load_array(directory / QUANTISER_FILE, mmapped=False)
        # The codes are read into RAM even on a mapped snapshot: every query reads all of them,
        # and anonymous memory gets huge pages where a mapped file gets 4 KiB ones.
        codes = load_array(directory / CODES_FILE, mmapped=False) if quantised else None
        columns = Columns(directory, manifest.columns, manifest.count, mmapped=mmapped)
        payloads = _map_payloads(directory / PAYLOADS_FILE)
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"snapshot {name} cannot be read: {exc}") from exc
    _check_shapes(
        manifest, vectors=vectors, params=params, ids=ids, order=order, offsets=offsets, codes=codes
    )
    if codes is not None and scan is not None:
        rows = (
            RowReader(directory / VECTORS_FILE, vectors) if isinstance(vectors, np.memmap) else None
        )
        radius = manifest.code_radius
        if radius is None:  # exported before the radius was recorded: one pass over the codes
            radius = code_radius(codes)
        searcher: FlatScan = QuantisedScan(
            vectors, codes, Sq8(params, radius), threads=scan.thread_count(), rows=rows
        )
    else:
        searcher = FlatScan(vectors)
    return Snapshot(
        directory=directory,
        manifest=manifest,
        scan=searcher,
        columns=columns,
        ids=ids,
        order=order,
        offsets=offsets,
        payloads=payloads,
        mmapped=mmapped,
    )


def _read_manifest(directory: Path) -> SnapshotManifest:
    path = directory / MANIFEST_FILE
    try:
        manifest = SnapshotManifest.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SnapshotError(f"{directory} has no manifest: it is not a complete snapshot") from exc
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise SnapshotError(f"{path} is unreadable: {exc}") from exc
    if (
        manifest.format_version != FORMAT_VERSION
        or manifest.metric != METRIC
        or manifest.quantiser != QUANTISER
    ):
        raise SnapshotError(
            f"{directory} is format {manifest.format_version} / {manifest.metric} / "
            f"{manifest.quantiser}; this Timbre reads format {FORMAT_VERSION} / {METRIC} / "
            f"{QUANTISER}: export a new snapshot"
        )
    return manifest


def _check_files(
    directory: Path, manifest: SnapshotManifest, verified: VerifiedFiles | None, reverify: bool
) -> None:
    """Every file the manifest lists is there, at its size, and (``verified`` given) matches
    its sha256 unless it matched before and is unchanged since."""
    required = [*DATA_FILES]
    for field, kind in manifest.columns.items():
        required += column_files(field, kind)
    unexpected = sorted(
        f for f in manifest.files if f not in required or not FILE_NAME_PATTERN.fullmatch(f)
    )
    if unexpected:
        raise SnapshotError(f"snapshot {manifest.name} lists unexpected files {unexpected}")
    for file_name in required:
        path = directory / file_name
        expected = manifest.files.get(file_name)
        if expected is None or not path.is_file():
            raise SnapshotError(f"snapshot {manifest.name} lacks {file_name}")
        if path.stat().st_size != expected["bytes"]:
            raise SnapshotError(
                f"snapshot {manifest.name}: {file_name} is {path.stat().st_size} bytes, the "
                f"manifest says {expected['bytes']} (truncated or replaced)"
            )
        if verified is None:
            continue
        sha256, ident = expected["sha256"], identity(path)
        if not reverify and verified.unchanged(file_name, ident, sha256):
            continue
        if sha256_file(path) != sha256:
            raise SnapshotError(
                f"snapshot {manifest.name}: {file_name} fails its sha256 checksum (corrupt); "
                "export a new snapshot"
            )
        verified.passed(file_name, ident, sha256)
    if verified is not None:
        verified.save()


def _check_shapes(
    manifest: SnapshotManifest,
    *,
    vectors: np.ndarray,
    params: np.ndarray,
    ids: np.ndarray,
    order: np.ndarray,
    offsets: np.ndarray,
    codes: np.ndarray | None,
) -> None:
    n, dim = manifest.count, manifest.dim
    if (
        vectors.shape != (n, dim)
        or vectors.dtype != np.float32
        or params.shape != (3, dim)
        or params.dtype != np.float32
        or (codes is not None and (codes.shape != (n, dim) or codes.dtype != np.uint8))
        or ids.shape != (n, 16)
        or order.shape != (n,)
        or offsets.shape != (n + 1,)
    ):
        raise SnapshotError(f"snapshot {manifest.name}: its files disagree with its manifest")


def _map_payloads(path: Path) -> mmap.mmap | bytes:
    if path.stat().st_size == 0:
        return b""  # mmap cannot map an empty file
    with path.open("rb") as src:
        return mmap.mmap(src.fileno(), 0, access=mmap.ACCESS_READ)
