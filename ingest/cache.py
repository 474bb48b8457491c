"""On-disk caches that make re-runs cheap: content hashes and MERT features.

* :class:`HashCache` remembers each file's SHA-256 by (path, size, mtime), so a re-run does
  not read an unchanged library again (SQLite; one row per path, keyed by the path's stored
  text form). It trusts size and mtime: a file rewritten in place with the same size and
  the same mtime (a tool that restores timestamps, a copy with ``cp -p`` or ``rsync -t`` of
  other bytes) keeps its old hash, and so its old vector. ``timbre ingest --rehash`` reads
  every file again and corrects such entries.
* :class:`FeatureCache` keeps the MERT window vectors of each content, keyed by the content
  hash, the MERT revision and the pipeline version. Changing the CLaMP3 checkpoint, or
  re-ingesting, reuses them: MERT is most of the compute.

Both write atomically (SQLite transactions; ``.npy`` written to a temporary name and
renamed), so a job killed at any moment leaves no half-written entry.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import tempfile
from pathlib import Path

import numpy as np

from timbre.store.pathtext import path_from_text

_READ_CHUNK_BYTES = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


class HashCache:
    """SHA-256 of files, recomputed only when a file's size or mtime changes.

    Args:
        db_path: the SQLite file.
        rehash: read every file again, whatever its size and mtime say, and count the
            files whose content changed behind an unchanged size and mtime.
    """

    def __init__(self, db_path: Path, *, rehash: bool = False) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(db_path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER, "
            "mtime_ns INTEGER, sha256 TEXT)"
        )
        self.rehash = rehash
        self.hits = 0
        self.misses = 0
        self.changed_in_place = 0

    def sha256(self, path: str) -> str:
        """The content hash of the file stored as ``path`` (its text form).

        Raises:
            OSError: the file cannot be read.
        """
        real = path_from_text(path)
        st = real.stat()
        row = self._db.execute(
            "SELECT size, mtime_ns, sha256 FROM hashes WHERE path = ?", (path,)
        ).fetchone()
        unchanged = bool(row) and row[0] == st.st_size and row[1] == st.st_mtime_ns
        if unchanged and not self.rehash:
            self.hits += 1
            return str(row[2])
        self.misses += 1
        digest = sha256_of(real)
        if unchanged and digest != row[2]:
            self.changed_in_place += 1
        self._db.execute(
            "INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?)",
            (path, st.st_size, st.st_mtime_ns, digest),
        )
        return digest

    def close(self) -> None:
        self._db.close()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:120]


class FeatureCache:
    """MERT window vectors ``[n_windows, hidden]`` per content, as float32 ``.npy`` files."""

    def __init__(self, root: Path, mert_ref: str, pipeline_version: str) -> None:
        self.folder = root / _slug(mert_ref) / _slug(pipeline_version)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0

    def _path(self, sha256: str) -> Path:
        return self.folder / sha256[:2] / f"{sha256}.npy"

    def has(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def get(self, sha256: str) -> np.ndarray | None:
        path = self._path(sha256)
        try:
            features = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            self.misses += 1
            return None  # absent, or damaged by something outside Timbre: recompute
        self.hits += 1
        return features

    def put(self, sha256: str, features: np.ndarray) -> None:
        path = self._path(sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.save(handle, np.asarray(features, dtype=np.float32), allow_pickle=False)
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
