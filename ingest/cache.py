"""On-disk caches that make re-runs cheap: content hashes and MERT features.

* :class:`HashCache` remembers each file's SHA-256 by (path, size, mtime), so a re-run does
  not read an unchanged library again (SQLite; one row per path).
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

_READ_CHUNK_BYTES = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


class HashCache:
    """SHA-256 of files, recomputed only when a file's size or mtime changes."""

    def __init__(self, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(db_path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER, "
            "mtime_ns INTEGER, sha256 TEXT)"
        )
        self.hits = 0
        self.misses = 0

    def sha256(self, path: Path) -> str:
        st = path.stat()
        row = self._db.execute(
            "SELECT size, mtime_ns, sha256 FROM hashes WHERE path = ?", (str(path),)
        ).fetchone()
        if row and row[0] == st.st_size and row[1] == st.st_mtime_ns:
            self.hits += 1
            return str(row[2])
        self.misses += 1
        digest = sha256_of(path)
        self._db.execute(
            "INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?)",
            (str(path), st.st_size, st.st_mtime_ns, digest),
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
