"""ONNX Runtime as the CPU backend: choose it, find or make each graph, gate it, load it.

Family-neutral: a family describes each graph as a :class:`Spec`. The first start exports the
PyTorch module (:mod:`timbre.embedding.onnx_export`) and adopts the graph only if it agrees
with eager on fixed probes to ``models.onnx_min_cosine``; otherwise it records the refusal and
runs eager. Cache entries (``<kind>-<key digest>/`` under ``models.export_dir``) are keyed by
the sources' sha256, the tool versions and :data:`GRAPH_FORMAT`, staged under a file lock, and
checked again on the cheap probes at each load. Imports neither torch nor onnxruntime here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

import numpy as np
from filelock import FileLock

from timbre.embedding.runtime import agreement, device_type, judge, usable_cores
from timbre.errors import ConfigError, ModelFilesError
from timbre.fsutil import sha256_file
from timbre.settings_models import ModelsSettings

log = logging.getLogger(__name__)

Runtime = Literal["torch", "onnxruntime"]

GRAPH_FORMAT = 2
"""Bump when the exported graphs or the probes change (2: fused graphs, short warm probes)."""
MANIFEST = "manifest.json"
PROBES = "probes.npz"
DIGEST_MEMO = "sha256-memo.json"
LOCK_TIMEOUT_S = 3600.0
"""How long a process waits for another one's export (s): minutes on a small machine."""
PROVIDERS = ["CPUExecutionProvider"]


def choose_runtime(settings: ModelsSettings, side: Literal["text", "audio"]) -> Runtime:
    """Which runtime serves one side (text, or MERT + audio tower): ``auto`` is onnxruntime
    on a CPU, torch on a GPU; ConfigError for ``onnxruntime`` on CUDA."""
    if settings.runtime == "onnxruntime" and settings.device == "cuda":
        raise ConfigError(
            "models.runtime is onnxruntime, which Timbre runs on the CPU only; set "
            "models.device to cpu (or auto), or models.runtime to torch or auto"
        )
    if settings.runtime in ("torch", "onnxruntime"):
        return "torch" if settings.runtime == "torch" else "onnxruntime"
    return "onnxruntime" if device_type(settings.device) == "cpu" else "torch"


def ort_threads(settings: ModelsSettings) -> int:
    return settings.threads or usable_cores()


def export_cache(settings: ModelsSettings) -> ExportCache:
    if settings.export_dir is None:
        raise ConfigError("models.export_dir is not resolved (load settings through Settings)")
    return ExportCache(Path(settings.export_dir).expanduser())


# -- running a graph --------------------------------------------------------------------------


def session_options(threads: int) -> Any:
    """Options that hold under the service's concurrency: idle intra-op threads sleep rather
    than spin (spinning lost badly beside any other busy thread: the text p99 passed a
    second), and one inter-op thread (the graphs are sequential chains)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: its warnings about unused initialisers are noise
    return options


class Graph:
    """One exported model file in an ONNX Runtime session (input names checked)."""

    def __init__(self, path: Path, threads: int, inputs: tuple[str, ...]) -> None:
        import onnxruntime as ort

        try:
            self.session = ort.InferenceSession(str(path), session_options(threads), PROVIDERS)
        except Exception as exc:  # onnxruntime raises its own non-exported exception types
            raise ModelFilesError(f"onnxruntime cannot load {path}: {exc}") from exc
        names = tuple(i.name for i in self.session.get_inputs())
        if names != inputs:
            raise ModelFilesError(f"{path} takes inputs {names}, expected {inputs}")
        self.path = path
        self._output = self.session.get_outputs()[0].name

    def __call__(self, **feeds: np.ndarray) -> np.ndarray:
        out: Any = self.session.run([self._output], feeds)[0]
        return np.asarray(out, dtype=np.float32)


# -- the export cache -------------------------------------------------------------------------


def tool_versions() -> dict[str, str]:
    """The exporter and runtime versions, read from package metadata (imports neither)."""

    def of(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "absent"

    return {
        "exporter": f"torch {of('torch')}, onnxscript {of('onnxscript')}",
        "runtime": f"onnxruntime {of('onnxruntime')}",
        "graph_format": str(GRAPH_FORMAT),
    }


class DigestMemo:
    """sha256 of files, remembered by file identity (device, inode, size, mtime) in one small
    JSON file: a start with warm caches reads no weights."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def sha256(self, file: Path) -> str:
        real = file.resolve()
        try:
            st = real.stat()
        except OSError as exc:
            raise ModelFilesError(f"cannot read {file}: {exc.strerror}") from exc
        identity = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]
        try:
            memo = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            memo = {}
        memo = memo if isinstance(memo, dict) else {}
        known = memo.get(str(real))
        if isinstance(known, dict) and known.get("identity") == identity:
            return str(known["sha256"])
        digest = sha256_file(real)
        memo[str(real)] = {"identity": identity, "sha256": digest}
        with contextlib.suppress(OSError):  # a read-only cache only costs a re-hash next time
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(memo, indent=1) + "\n", encoding="utf-8")
            tmp.replace(self.path)
        return digest


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
        """A fresh folder beside the entry (or in the system's temporary folder if the cache
        cannot be written) to export into."""
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


# -- the gate ---------------------------------------------------------------------------------


@dataclass
class Spec:
    """How to make, gate and load one model's graph."""

    kind: str  # the cache entry's name prefix
    name: str  # for the log
    sources: list[Path]  # the files the graph is made from (their sha256 is in the key)
    load_eager: Callable[[], Any]  # the torch module; its export(folder) returns the graph file
    dims: Callable[[Any], dict[str, int]]  # what the runtime side needs, read from eager
    load_ort: Callable[[Path, dict[str, int]], Any]  # loads a graph file with those dims
    probes: Callable[[dict[str, int], bool], Sequence[Any]]  # (dims, reload: the cheap subset)
    run: Callable[[Any, Sequence[Any]], np.ndarray]  # a module on probes -> [n, d] float32


def load(settings: ModelsSettings, spec: Spec) -> tuple[Any, Runtime]:
    """The model on onnxruntime when its graph passes the gate, else the eager module."""
    min_cosine = settings.onnx_min_cosine
    entry = export_cache(settings).entry(spec.kind, spec.sources)
    warm = _warm(entry, spec, min_cosine)
    if warm is not None:
        return warm, "onnxruntime"
    with entry.lock():
        manifest = entry.manifest()
        if manifest is not None and manifest.get("status") == "ok":
            warm = _warm(entry, spec, min_cosine)  # another process made it meanwhile
            if warm is not None:
                return warm, "onnxruntime"
            entry.discard()
        elif manifest is not None:
            log.warning(
                "%s: its ONNX export was refused (%s); running PyTorch. Delete %s to try again",
                spec.name,
                manifest.get("reason"),
                entry.directory,
            )
            return spec.load_eager(), "torch"
        with _EXPORTING:
            return _export_and_gate(entry, spec, min_cosine)


def _warm(entry: CacheEntry, spec: Spec, min_cosine: float) -> Any | None:
    manifest = entry.manifest()
    if manifest is None or manifest.get("status") != "ok":
        return None
    try:
        dims = {k: int(v) for k, v in manifest["dims"].items()}
        model = spec.load_ort(entry.model_path, dims)
        got = spec.run(model, spec.probes(dims, True))
        measured = agreement(entry.probes()["reload_expected"], got)
    except (ModelFilesError, KeyError, OSError, ValueError) as exc:
        log.warning("%s: cached export %s is unusable (%s)", spec.name, entry.directory, exc)
        return None
    if measured < min_cosine:
        log.warning(
            "%s: cached export %s agrees with its recorded eager outputs only to %.9f",
            spec.name,
            entry.directory,
            measured,
        )
        return None
    log.debug(
        "%s: onnxruntime graph %s (cosine 1 - %.1e)", spec.name, entry.directory, 1 - measured
    )
    return model


_EXPORTING = threading.Lock()
"""torch.export traces through global state: one export at a time per process (the service
may load its text side in the background while a query loads the audio side)."""


def _export_and_gate(entry: CacheEntry, spec: Spec, min_cosine: float) -> tuple[Any, Runtime]:
    eager = spec.load_eager()
    dims = spec.dims(eager)
    staged = entry.staging()
    log.info("%s: exporting to ONNX (once per checkpoint and versions) into %s", spec.name, staged)
    started = time.perf_counter()
    try:
        candidate = spec.load_ort(_export_retrying(spec, eager, staged), dims)
        probes = spec.probes(dims, False)
        measured = agreement(spec.run(eager, probes), spec.run(candidate, probes))
        adopted = judge(spec.name, measured, min_cosine)
        reason = None if adopted else f"agreement {measured:.9f} < {min_cosine}"
    except Exception as exc:  # an exporter or runtime failure must not stop Timbre: eager runs
        measured, reason = float("nan"), f"export failed: {type(exc).__name__}: {exc}"
        log.warning("%s: %s; running PyTorch", spec.name, reason)
    try:
        fusions = json.loads((staged / "fusions.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        fusions = None  # the export failed before its fusions
    manifest = {
        "status": "refused" if reason else "ok",
        "reason": reason,
        "dims": dims,
        "agreement_min_cosine": measured,
        "required_min_cosine": min_cosine,
        "export_s": round(time.perf_counter() - started, 1),
        "fusions": fusions,
    }
    if reason:
        for path in [*staged.glob("model.onnx*"), *staged.glob("raw.onnx*")]:
            path.unlink()  # keep the verdict, not the gigabytes
        reload_expected = np.zeros((0, 0), np.float32)
    else:
        reload_expected = spec.run(eager, spec.probes(dims, True))
    try:
        entry.publish(staged, manifest, {"reload_expected": reload_expected})
    except OSError as exc:  # a read-only cache: use the graph now, export again next start
        log.warning("%s: cannot write the export cache (%s)", spec.name, exc)
    if reason:
        return eager, "torch"
    # The session keeps its memory-mapped weights across the folder's rename.
    return candidate, "onnxruntime"


def _export_retrying(spec: Spec, eager: Any, staged: Path) -> Path:
    """``eager.export``, once more after a ``SystemError``: that is the interpreter failing,
    not the model (CPython 3.11's AST recursion counter is shared by threads), and a refusal
    is cached for good."""
    try:
        path: Path = eager.export(staged)
    except SystemError as exc:
        log.warning(
            "%s: export failed inside the interpreter (%s); trying once more", spec.name, exc
        )
        path = eager.export(staged)
    return path
