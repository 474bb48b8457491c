"""Export: every point of a collection into a new snapshot, published atomically.

The export writes ``.partial-<NNNNNN>/``, fsyncs it, renames it to ``<NNNNNN>/`` and then
replaces the small ``CURRENT`` file; a crash at any point leaves ``CURRENT`` naming the
previous, complete snapshot.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

import numpy as np

from timbre.diskspace import as_disk_full
from timbre.errors import SnapshotError, StoreLockedError, TimbreError
from timbre.fsutil import atomic_write, sha256_file
from timbre.store.collection import Collection
from timbre.store.lock import OwnerLock
from timbre.store.payload import DISPLAY_FIELDS
from timbre.store.records import Record, utc_now
from timbre.store.schema import load_schema
from timbre.store.snapshot.arrays import NpyAppender, load_array
from timbre.store.snapshot.columns import ColumnWriter
from timbre.store.snapshot.layout import (
    CODES_FILE,
    COLUMNS_DIR,
    CURRENT_FILE,
    DATA_FILES,
    EXPORT_LOCK_FILE,
    IDS_FILE,
    MANIFEST_FILE,
    METRIC,
    OFFSETS_FILE,
    ORDER_FILE,
    PARTIAL_PREFIX,
    PAYLOADS_FILE,
    QUANTISER,
    QUANTISER_FILE,
    VECTORS_FILE,
    SnapshotManifest,
    current_snapshot_name,
    fsync_path,
    id_keys,
    published_names,
)
from timbre.store.snapshot.quantiser import ENCODE_CHUNK_ROWS, Sq8, code_radius

log = logging.getLogger(__name__)

_EXPORT_PAGE_ROWS = 1024
_DISPLAY = frozenset(DISPLAY_FIELDS)


def _prune(snapshots: Path, keep: int) -> None:
    """Remove published snapshots beyond the newest ``keep``, never the current one (a process
    serving a removed one keeps its files open or mapped)."""
    current = current_snapshot_name(snapshots)
    names = published_names(snapshots)
    for name in names[: max(0, len(names) - keep)]:
        if name != current:
            log.info("removing old snapshot %s", name)
            shutil.rmtree(snapshots / name, ignore_errors=True)


class _Writer:
    """Writes the rows of a snapshot into its partial directory as they arrive: vectors straight
    to ``vectors.npy``, the SQ8 codes from that file once each dimension's range is known."""

    def __init__(self, directory: Path, dim: int, indexes: Mapping[str, str]) -> None:
        self.directory = directory
        self._dim = dim
        self._vectors = NpyAppender(directory / VECTORS_FILE, np.float32, (dim,))
        self._vmin = np.full(dim, np.inf, dtype=np.float32)
        self._vmax = np.full(dim, -np.inf, dtype=np.float32)
        self._ids = bytearray()
        self._offsets: list[int] = [0]
        self._payloads: IO[bytes] = (directory / PAYLOADS_FILE).open("wb")
        self.columns = ColumnWriter(directory, indexes)
        self.column_files: list[str] = []
        self.code_radius = 0.0  # of the SQ8 codes (quantiser.code_radius), set by finish()

    def add(self, records: list[Record]) -> None:
        vectors = np.stack([r.vector for r in records if r.vector is not None]).astype(np.float32)
        if vectors.shape != (len(records), self._dim):
            raise SnapshotError(f"the store returned vectors of shape {vectors.shape}")
        self.columns.add(self.rows, [r.payload for r in records])
        self._vectors.append(vectors)
        np.minimum(self._vmin, vectors.min(axis=0), out=self._vmin)
        np.maximum(self._vmax, vectors.max(axis=0), out=self._vmax)
        for record in records:
            self._ids += uuid.UUID(record.id).bytes
            display = {k: v for k, v in record.payload.items() if k in _DISPLAY}
            line = json.dumps(display, ensure_ascii=False, separators=(",", ":")).encode()
            self._payloads.write(line + b"\n")
            self._offsets.append(self._offsets[-1] + len(line) + 1)

    @property
    def rows(self) -> int:
        return len(self._offsets) - 1

    def finish(self) -> None:
        self._payloads.flush()
        os.fsync(self._payloads.fileno())
        self._payloads.close()
        self._vectors.finish()
        self._write_codes()
        ids = np.frombuffer(bytes(self._ids), dtype=np.uint8).reshape(-1, 16)
        np.save(self.directory / IDS_FILE, ids)
        np.save(
            self.directory / ORDER_FILE, np.argsort(id_keys(ids), kind="stable").astype(np.int64)
        )
        np.save(self.directory / OFFSETS_FILE, np.asarray(self._offsets, dtype=np.uint64))
        self.column_files = self.columns.finish()
        for name in (*DATA_FILES, *self.column_files):
            fsync_path(self.directory / name)
        fsync_path(self.directory / COLUMNS_DIR)

    def _write_codes(self) -> None:
        """SQ8 codes of every row, and the largest reconstruction error of each dimension."""
        quantiser = Sq8.from_range(self._vmin, self._vmax)
        vectors = load_array(self.directory / VECTORS_FILE, mmapped=True)
        codes = np.lib.format.open_memmap(
            self.directory / CODES_FILE, mode="w+", dtype=np.uint8, shape=vectors.shape
        )
        max_error = np.zeros(self._dim, dtype=np.float32)
        for start in range(0, len(vectors), ENCODE_CHUNK_ROWS):
            chunk = np.asarray(vectors[start : start + ENCODE_CHUNK_ROWS])
            encoded = quantiser.encode(chunk)
            codes[start : start + len(chunk)] = encoded
            error = np.abs(quantiser.decode(encoded) - chunk).max(axis=0)
            np.maximum(max_error, error, out=max_error)
            self.code_radius = max(self.code_radius, code_radius(encoded))
        codes.flush()
        del codes
        params = quantiser.params.copy()
        params[2] = max_error
        np.save(self.directory / QUANTISER_FILE, params)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._payloads.close()
        with contextlib.suppress(OSError):
            self._vectors.close()


def export_snapshot(
    source: Collection,
    snapshots: Path,
    *,
    source_mode: str,
    keep: int,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    indexes: Mapping[str, str] | None = None,
) -> SnapshotManifest:
    """Export every point of ``source`` into a new snapshot and publish it atomically, keeping
    the newest ``keep``; ``indexes`` (field -> type) of the filter columns default to the
    schema's. StoreLockedError while another export runs; on SnapshotError the previous
    snapshot stays published."""
    snapshots.mkdir(parents=True, exist_ok=True)
    lock = OwnerLock(
        snapshots / EXPORT_LOCK_FILE,
        what=f"Snapshot export into {snapshots}",
        remedy="Wait for that export to finish; one export at a time publishes snapshots.",
    )
    lock.acquire()
    try:
        _remove_partials(snapshots)
        started = time.perf_counter()
        names = published_names(snapshots)
        name = f"{int(names[-1]) + 1 if names else 1:06d}"
        partial = snapshots / f"{PARTIAL_PREFIX}{name}"
        partial.mkdir()
        try:
            manifest = _write(
                source,
                partial,
                name=name,
                source_mode=source_mode,
                batch_size=batch_size,
                progress=progress,
                indexes=indexes,
            )
            # Publication: the complete directory gets its final name, then CURRENT names it.
            partial.rename(snapshots / name)
            fsync_path(snapshots)
            atomic_write(snapshots / CURRENT_FILE, name + "\n", durable=True)
        except BaseException as exc:
            shutil.rmtree(partial, ignore_errors=True)
            if isinstance(exc, TimbreError) or not isinstance(exc, Exception):
                raise
            full = as_disk_full(exc, "the snapshot export (the previous one stays published)")
            if full is not None:
                raise full from exc
            raise SnapshotError(
                f"snapshot export failed, the previous one stays published: {exc}"
            ) from exc
        log.info(
            "published snapshot %s: %d vectors from %s in %.1f s",
            name,
            manifest.count,
            manifest.source_collection,
            time.perf_counter() - started,
        )
        _prune(snapshots, keep)
        return manifest
    finally:
        lock.release()


def remove_stale_partials(snapshots: Path) -> int:
    """Delete the ``.partial-*`` folders an export killed mid-way left behind (kill -9, power
    cut), at a process's start; returns how many. A folder a live export is writing is left
    alone: that export holds the export lock, so nothing is removed while it runs."""
    if not snapshots.is_dir() or not any(snapshots.glob(f"{PARTIAL_PREFIX}*")):
        return 0
    lock = OwnerLock(snapshots / EXPORT_LOCK_FILE, what="snapshot export", remedy="")
    try:
        lock.acquire()
    except StoreLockedError:
        return 0
    try:
        return _remove_partials(snapshots)
    finally:
        lock.release()


def _remove_partials(snapshots: Path) -> int:
    removed = 0
    for path in snapshots.glob(f"{PARTIAL_PREFIX}*"):
        log.info("removing %s, left by an export that did not finish", path.name)
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    return removed


def _write(
    source: Collection,
    partial: Path,
    *,
    name: str,
    source_mode: str,
    batch_size: int | None,
    progress: Callable[[int], None] | None,
    indexes: Mapping[str, str] | None,
) -> SnapshotManifest:
    """Write every file of the snapshot into ``partial``, the manifest last."""
    # The marker is read before the first page: writes that land during the export make the
    # snapshot look older than it is, never newer.
    info = source.describe()
    indexes = load_schema().indexes if indexes is None else indexes
    writer = _Writer(partial, info.dim, indexes)
    fields = list(dict.fromkeys([*DISPLAY_FIELDS, *writer.columns.fields]))
    records = source.scroll(fields=fields, with_vectors=True, batch_size=batch_size)
    try:
        while page := list(itertools.islice(records, batch_size or _EXPORT_PAGE_ROWS)):
            writer.add(page)
            if progress:
                progress(writer.rows)
        writer.finish()
    finally:
        writer.close()
    manifest = SnapshotManifest(
        name=name,
        created_at=utc_now(),
        model=info.model,
        audio_key=info.audio_key,
        pipeline_version=str(info.model.get("pipeline_version", "")),
        dim=info.dim,
        metric=METRIC,
        count=writer.rows,
        source_mode=source_mode,
        source_collection=info.name,
        source_write=info.last_write,
        files={
            n: {"sha256": sha256_file(partial / n), "bytes": (partial / n).stat().st_size}
            for n in (*DATA_FILES, *writer.column_files)
        },
        columns=writer.columns.fields,
        quantiser=QUANTISER,
        code_radius=writer.code_radius,
    )
    (partial / MANIFEST_FILE).write_text(manifest.to_json(), encoding="utf-8")
    fsync_path(partial / MANIFEST_FILE)
    fsync_path(partial)
    return manifest
