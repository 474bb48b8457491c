"""The decoding worker processes of a parallel job, and what they do to one file.

No worker outlives its job: workers ignore SIGINT (one interrupted inside the pool's queue
code can hang the parent; the parent ends them in :func:`stop_pool`), and die with their
parent (``PR_SET_PDEATHSIG`` plus a watchdog thread), else a killed job's workers linger.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ingest.metadata import AudioFacts, MetadataRules, describe
from ingest.options import Limits
from ingest.report import Failure
from ingest.tags import read_tags
from timbre.audio.analysis import Heard, analyse
from timbre.audio.decode import DecodedAudio, decode_file
from timbre.errors import AudioError
from timbre.fsutil import sha256_file
from timbre.store.pathtext import path_from_text

log = logging.getLogger("timbre.ingest")


@dataclass
class Prepared:
    """One file, ready for the model loop (or failed)."""

    sha256: str
    paths: list[str]
    payload: dict[str, Any] = field(default_factory=dict)
    samples: np.ndarray | None = None
    audio_s: float = 0.0
    failure: Failure | None = None


def prepare(
    sha256: str,
    found: Sequence[tuple[str, str]],
    limits: Limits,
    rules: MetadataRules,
    keep_samples: bool,
) -> Prepared:
    """Decode, analyse and describe one content found at ``(path, outermost root)`` pairs;
    the first path sorted is described. Decoded even when its features are cached (then
    ``keep_samples`` is False), so the point gets the same audio facts as a fresh one."""
    first, root_text = min(found)
    path, root = Path(first), Path(root_text)  # text forms, for names and reports
    real = path_from_text(first)
    paths = sorted(p for p, _ in found)
    stage = "decode"
    try:
        audio = decode(real, limits)
        facts = AudioFacts(audio.duration_s, audio.source_sample_rate, audio.channels, audio.format)
        stage = "metadata"
        listen = audio_listener(str(path), audio.samples, audio.sample_rate, audio.duration_s)
        payload = describe(path, root, facts, read_tags(real), rules, listen=listen)
    except AudioError as exc:
        return Prepared(sha256, paths, failure=Failure(str(path), stage, exc.code, exc.reason))
    except Exception as exc:  # a bad file must never stop the job
        return Prepared(
            sha256, paths, failure=Failure(str(path), stage, type(exc).__name__, str(exc))
        )
    samples = audio.samples if keep_samples else None
    return Prepared(sha256, paths, payload=payload, samples=samples, audio_s=facts.duration_s)


def decode(path: Path, limits: Limits) -> DecodedAudio:
    """Decode ``path`` as the job does, by ``limits``."""
    return decode_file(
        path,
        sample_rate=limits.sample_rate,
        max_duration_s=limits.max_duration_s,
        max_file_bytes=limits.max_file_bytes,
        resampler=limits.resampler,
    )


def audio_listener(
    path: str, samples: np.ndarray, sample_rate: int, duration_s: float
) -> Callable[[bool, bool], Heard | None]:
    """The audio analysis of decoded samples, for :func:`describe`; never fails the file."""

    def listen(tempo: bool, key: bool) -> Heard | None:
        try:
            return analyse(samples, sample_rate, duration_s, tempo=tempo, key=key)
        except Exception:  # an analysis fault leaves the facts unknown, never loses the file
            log.exception("audio analysis failed: %s", path)
            return None

    return listen


def hash_file(path: str) -> tuple[str, str | None, str | None]:
    """``(path, content hash, None)``, or ``(path, None, why)`` when it cannot be read."""
    try:
        return path, sha256_file(path_from_text(path)), None
    except OSError as exc:
        return path, None, f"{type(exc).__name__}: {exc}"


PARENT_POLL_S = 0.2
"""How often a worker's watchdog checks that its parent is alive (seconds)."""
STOP_GRACE_S = 2.0
"""How long a stopped worker gets to end after SIGTERM before SIGKILL (seconds)."""

_PR_SET_PDEATHSIG = 1


def _die_with(parent_pid: int) -> None:
    if os.getppid() != parent_pid:
        os._exit(1)  # the parent died while this worker was starting
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent_pid:
            os._exit(1)  # reparented: the job that owned this worker is gone


def worker_init(parent_pid: int) -> None:
    """Run first in every worker: ignore SIGINT, and exit when ``parent_pid`` goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError, TypeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    threading.Thread(target=_die_with, args=(parent_pid,), name="parent-watch", daemon=True).start()


def decoding_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes (spawned: the parent's torch thread pools do not
    survive fork) that ignore SIGINT and die with this process."""
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=worker_init,
        initargs=(os.getpid(),),
    )


def stop_pool(pool: ProcessPoolExecutor, *, abort: bool) -> None:
    """Shut the pool down; with ``abort``, end busy workers now instead of waiting."""
    if not abort:
        pool.shutdown(wait=True, cancel_futures=True)
        return
    # No public way to end busy workers before Python 3.14 (terminate_workers).
    processes = list(getattr(pool, "_processes", {}).values())
    for process in processes:
        with contextlib.suppress(OSError, ValueError):
            process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + STOP_GRACE_S
    for process in processes:
        with contextlib.suppress(OSError, ValueError, AssertionError):
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(1.0)
    log.info("decoding workers stopped")
