"""On-disk caches that make re-runs cheap: content hashes and MERT features.

* :class:`HashCache` remembers each file's SHA-256 by (path, size, mtime), so a re-run does
  not read an unchanged library again (SQLite; one row per path, keyed by the path's stored
  text form). It trusts size and mtime: a file rewritten in place with the same size and
  the same mtime (a tool that restores timestamps, a copy with ``cp -p`` or ``rsync -t`` of
  other bytes) keeps its old hash, and so its old vector. ``timbre ingest --rehash`` reads
  every file again and corrects such entries.
* :class:`FeatureCache` keeps the MERT window vectors of each content, keyed by the content
  hash, the MERT revision and the pipeline version. Changing the CLaMP3 checkpoint, or
  re-ingesting, reuses them: MERT is most of the compute. Each entry carries a checksum and
  one that fails it is computed again.

Both write atomically (SQLite transactions; ``.npy`` written to a temporary name and
renamed), so a job killed at any moment leaves no half-written entry.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import sqlite3
import tempfile
from pathlib import Path

import numpy as np

from timbre.store.pathtext import path_from_text

log = logging.getLogger("timbre.ingest")

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
    """MERT window vectors ``[n_windows, hidden]`` per content, checksummed.

    Each entry is one file: a magic line, the sha256 of the rest, then the array as ``.npy``.
    A file that fails the check (zero-filled by a power cut, truncated, overwritten) is a miss,
    logged: its features are computed again and the entry rewritten. Trusting it would store a
    wrong vector under the content's id, which no later run corrects.
    """

    def __init__(self, root: Path, mert_ref: str, pipeline_version: str) -> None:
        self.folder = root / _slug(mert_ref) / _slug(pipeline_version)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0
        self.damaged = 0

    def _path(self, sha256: str) -> Path:
        return self.folder / sha256[:2] / f"{sha256}{_FEATURES_SUFFIX}"

    def has(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def get(self, sha256: str) -> np.ndarray | None:
        path = self._path(sha256)
        try:
            raw = path.read_bytes()
        except OSError:
            self.misses += 1
            return None  # absent (or unreadable): recompute
        features, problem = _decode_features(raw)
        if features is None:
            self.misses += 1
            self.damaged += 1
            log.warning("feature cache: %s %s; computing its features again", path, problem)
            return None
        self.hits += 1
        return features

    def put(self, sha256: str, features: np.ndarray) -> None:
        path = self._path(sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(_encode_features(features))
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        # An entry of the unchecked format this one replaces is never read again.
        path.with_suffix(".npy").unlink(missing_ok=True)


_FEATURES_SUFFIX = ".features"
_FEATURES_MAGIC = b"TIMBRE-FEATURES-1\n"
_DIGEST_HEX = 64


def _encode_features(features: np.ndarray) -> bytes:
    body = io.BytesIO()
    np.save(body, np.asarray(features, dtype=np.float32), allow_pickle=False)
    data = body.getvalue()
    return _FEATURES_MAGIC + hashlib.sha256(data).hexdigest().encode() + b"\n" + data


def _decode_features(raw: bytes) -> tuple[np.ndarray | None, str]:
    """The array in a cache file, or None and what is wrong with the file."""
    if not raw.startswith(_FEATURES_MAGIC):
        blank = raw.count(0) == len(raw)
        return None, "is zero-filled" if blank else "is not a feature cache entry"
    start = len(_FEATURES_MAGIC)
    digest, body = raw[start : start + _DIGEST_HEX], raw[start + _DIGEST_HEX + 1 :]
    if hashlib.sha256(body).hexdigest().encode() != digest:
        return None, "fails its checksum (truncated or overwritten)"
    try:
        features = np.load(io.BytesIO(body), allow_pickle=False)
    except (OSError, ValueError) as exc:
        return None, f"cannot be read ({exc})"
    if features.dtype != np.float32 or features.ndim != 2 or not np.isfinite(features).all():
        return None, f"holds no finite float32 [windows, hidden] array ({features.shape})"
    return features, ""
