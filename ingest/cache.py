"""On-disk caches that make re-runs cheap: file hashes by (path, size, mtime) in SQLite, and
checksummed MERT features by content; written atomically, so a kill leaves no half entry."""

from __future__ import annotations

import hashlib
import io
import logging
import re
import sqlite3
from pathlib import Path

import numpy as np

from timbre.fsutil import atomic_write, sha256_file
from timbre.store.pathtext import path_from_text

log = logging.getLogger("timbre.ingest")


class HashCache:
    """SHA-256 of files, recomputed only when a file's size or mtime changes (or always with
    ``rehash``, counting the files changed behind an unchanged size and mtime)."""

    def __init__(self, db_path: Path, *, rehash: bool = False) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.path = db_path
        self._db = self._open()
        self.rehash = rehash
        self.hits = 0
        self.misses = 0
        self.changed_in_place = 0

    def _open(self) -> sqlite3.Connection:
        """The cache file, started afresh when damaged (it can all be computed again)."""
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            if not _damaged(exc):
                raise
            self._discard(exc)
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER, "
                "mtime_ns INTEGER, sha256 TEXT)"
            )
            # Reads every page once (~0.1 s per 100k rows): damage found now, not mid-job.
            (verdict,) = db.execute("PRAGMA quick_check").fetchone()
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {verdict}")
        except BaseException:
            db.close()
            raise
        return db

    def _discard(self, exc: Exception) -> None:
        log.warning(
            "the hash cache %s is damaged (%s): starting it afresh; files are hashed again",
            self.path,
            exc,
        )
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def sha256(self, path: str) -> str:
        """The content hash of the file stored as ``path`` (its text form)."""
        real = path_from_text(path)
        st = real.stat()
        try:
            row = self._db.execute(
                "SELECT size, mtime_ns, sha256 FROM hashes WHERE path = ?", (path,)
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            if not _damaged(exc):
                raise
            self._db.close()
            self._discard(exc)
            self._db = self._connect()
            row = None
        # A stored digest is a content id: one that is not 64 hex digits is damage, not a hit.
        valid = bool(row) and isinstance(row[2], str) and _SHA256.fullmatch(row[2]) is not None
        unchanged = valid and row[0] == st.st_size and row[1] == st.st_mtime_ns
        if unchanged and not self.rehash:
            self.hits += 1
            return str(row[2])
        self.misses += 1
        digest = sha256_file(real)
        if unchanged and digest != row[2]:
            self.changed_in_place += 1
        self._db.execute(
            "INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?)",
            (path, st.st_size, st.st_mtime_ns, digest),
        )
        return digest

    def close(self) -> None:
        self._db.close()


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    """True for a file that is not (or no longer) a sound database, not a busy or full one."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    return code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or "quick_check" in str(exc)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:120]


class FeatureCache:
    """MERT window vectors per content: a magic line, the sha256 of the rest, the ``.npy``. An
    entry failing the check is a logged miss (trusting it would store a wrong vector for good)."""

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
        atomic_write(path, _encode_features(features), mkdir=True, private=True)
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
