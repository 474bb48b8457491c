"""The cache of exported ONNX graphs, keyed so that a stale graph can never be used.

An entry is a folder ``<kind>-<key digest>/`` under ``models.export_dir``::

    model.onnx, model.onnx.data   the graph and its weights (external data)
    probes.npz                    probe inputs and the eager model's outputs on them
    manifest.json                 key, dimensions, measured agreement, status (ok | refused)

The key holds the sha256 of every file the graph was made from (the checkpoint and, where it
defines the architecture, the config), the exporter's and the runtime's versions and
:data:`GRAPH_FORMAT`. Any change gives another folder. Entries are written in a temporary
folder and renamed into place, so a reader sees a complete entry or none; writers take a file
lock, so two processes never export the same graph at once. Nothing here imports torch.

Hashing a 1.8 GB checkpoint takes seconds, so digests are memoised by the file's identity
(device, inode, size, modification time in ns): a start with warm caches reads no weights.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from timbre.errors import ModelFilesError
from timbre.fsutil import atomic_write, sha256_file

log = logging.getLogger(__name__)

GRAPH_FORMAT = 2
"""Bump when the exported graphs (timbre/embedding/onnx_export.py) or the probes change.
2: ONNX Runtime's transformer fusions applied at export (timbre/embedding/onnx_fusion.py);
the audio tower's warm-load probes are the short ones only."""

MANIFEST = "manifest.json"
PROBES = "probes.npz"
DIGEST_MEMO = "sha256-memo.json"
LOCK_TIMEOUT_S = 3600.0
"""How long a process waits for another one's export (s): a full-size export takes minutes on
a small machine; an hour means something is stuck."""


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "absent"


def tool_versions() -> dict[str, str]:
    """The exporter and runtime versions, read from package metadata (imports neither)."""
    return {
        "exporter": f"torch {_version('torch')}, onnxscript {_version('onnxscript')}",
        "runtime": f"onnxruntime {_version('onnxruntime')}",
        "graph_format": str(GRAPH_FORMAT),
    }


class DigestMemo:
    """sha256 of files, remembered by file identity in one small JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def sha256(self, file: Path) -> str:
        real = file.resolve()
        try:
            st = real.stat()
        except OSError as exc:
            raise ModelFilesError(f"cannot read {file}: {exc.strerror}") from exc
        identity = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]
        memo = self._read()
        known = memo.get(str(real))
        if isinstance(known, dict) and known.get("identity") == identity:
            return str(known["sha256"])
        digest = sha256_file(real)
        memo[str(real)] = {"identity": identity, "sha256": digest}
        self._write(memo)
        return digest

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, memo: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # a read-only cache only costs a re-hash next time
            atomic_write(self.path, json.dumps(memo, indent=1) + "\n", mkdir=True)


@dataclass(frozen=True)
class CacheEntry:
    """One exported graph's folder and the key it was made under."""

    kind: str
    directory: Path
    key: dict[str, Any]

    @property
    def model_path(self) -> Path:
        return self.directory / "model.onnx"

    def manifest(self) -> dict[str, Any] | None:
        """The entry's manifest, or None when there is no complete entry."""
        path = self.directory / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("export cache: unreadable %s (%s); it will be made again", path, exc)
            return None
        if not isinstance(data, dict) or data.get("key") != self.key:
            return None
        return data

    def probes(self) -> dict[str, np.ndarray]:
        with np.load(self.directory / PROBES, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Held while exporting: a second process waits, then finds the entry made. A cache
        folder that cannot be written gets no lock (nothing will be published there)."""
        locks = self.directory.parent / ".locks"
        try:
            locks.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(locks / f"{self.directory.name}.lock"), timeout=LOCK_TIMEOUT_S)
            lock.acquire()
        except OSError as exc:
            log.warning("export cache %s is not writable (%s)", self.directory.parent, exc)
            yield
            return
        try:
            yield
        finally:
            lock.release()

    def staging(self) -> Path:
        """A fresh temporary folder beside the entry (or, if the cache cannot be written, in
        the system's temporary folder), to export into."""
        tmp = self.directory.with_name(f"{self.directory.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir(parents=True)
        except OSError:
            return Path(tempfile.mkdtemp(prefix=f"timbre-{self.directory.name}-"))
        return tmp

    def publish(
        self, staged: Path, manifest: dict[str, Any], probes: dict[str, np.ndarray]
    ) -> None:
        """Write the manifest and probes into ``staged`` and move it into place."""
        np.savez(staged / PROBES, **probes)  # type: ignore[arg-type]
        record = {
            "key": self.key,
            "kind": self.kind,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **manifest,
        }
        (staged / MANIFEST).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        self.discard()
        staged.replace(self.directory)

    def discard(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


class ExportCache:
    """The export folder: entries by kind and source files, and the digest memo."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.memo = DigestMemo(root / DIGEST_MEMO)

    def entry(self, kind: str, sources: Sequence[Path]) -> CacheEntry:
        """The entry for a graph of ``kind`` made from ``sources`` (checkpoint, config)."""
        key: dict[str, Any] = {
            "kind": kind,
            "sources": {p.name: self.memo.sha256(p) for p in sources},
            **tool_versions(),
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
        return CacheEntry(kind, self.root / f"{kind}-{digest}", key)
