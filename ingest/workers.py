"""The decoding worker processes of a parallel job, built so that none outlives its job.

* Workers ignore SIGINT. A Ctrl-C in a terminal reaches the whole process group; a worker
  interrupted inside the pool's queue code can leave the parent waiting on a pipe for good,
  so only the parent reacts, and it ends the workers itself (:func:`stop_pool`).
* Workers die with their parent. The pool's queues are pipes whose write ends every worker
  holds too, so a worker whose parent was killed (``kill -9``) would wait on them forever,
  and keep multiprocessing's resource tracker alive with it. Each worker asks the kernel
  for SIGKILL when its parent dies (``PR_SET_PDEATHSIG``, Linux) and also runs a watchdog
  thread that exits as soon as its parent process changes (portable).
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
from concurrent.futures import ProcessPoolExecutor

log = logging.getLogger("timbre.ingest")

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
    """Shut the pool down; with ``abort`` (the job is being interrupted or failed), end the
    workers now instead of waiting for the files they are decoding."""
    if not abort:
        pool.shutdown(wait=True, cancel_futures=True)
        return
    # ProcessPoolExecutor has no public way to end busy workers before Python 3.14
    # (terminate_workers); its process table is the one handle on them.
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
