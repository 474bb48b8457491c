"""``timbre watch``: the watcher and jobs of ``timbre serve`` with ``watch.enabled``, without
the HTTP service (it refuses beside a running one)."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from timbre.cli.app import app
from timbre.errors import ExitCode, StoreLockedError

STATUS_EVERY_S = 60.0
"""Seconds between two status lines while nothing happens."""


@app.command()
def watch(
    roots: Annotated[
        list[Path] | None,
        typer.Argument(help="Folders to watch (default: watch.roots, else the known roots)."),
    ] = None,
) -> None:
    """Watch the library folders and index every change (no HTTP service); Ctrl-C stops."""
    from timbre.cli.owner import claim_data_dir, read_service_file
    from timbre.settings import load_settings

    overrides: dict[str, Any] = {}
    if roots:
        overrides = {"watch": {"roots": [p.expanduser().resolve() for p in roots]}}
    settings = load_settings(**overrides)
    service = read_service_file(settings)
    if service is not None:
        raise StoreLockedError(
            f"the service at {service['url']} owns the data dir {settings.data_dir}: let it "
            "watch instead (set watch.enabled: true, e.g. TIMBRE_WATCH__ENABLED=true, and "
            "restart `timbre serve`)"
        )
    lock = claim_data_dir(settings)
    try:
        _watch(settings)
    finally:
        lock.release()


def _watch(settings: Any) -> None:
    from app.jobs import IngestJobs
    from timbre.cli.watching import build_watcher, watch_roots
    from timbre.cli.wiring import build_library, ingest_runner

    if not watch_roots(settings):
        typer.echo(
            "error: nothing to watch: name the folders, set watch.roots, or index a library "
            "first (`timbre ingest FOLDER`)",
            err=True,
        )
        raise typer.Exit(ExitCode.FAILED)
    library = build_library(settings)
    _adopt_store(settings, library)
    disk = library.disk
    jobs = IngestJobs(
        ingest_runner(settings, library),
        precheck=None if disk is None else lambda: disk.check(0, "an ingest job"),
    )
    watcher = build_watcher(settings, jobs)
    stopping = threading.Event()

    def on_signal(signum: int, _: Any) -> None:
        if stopping.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: leave now (the job resumes next time)
        stopping.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    watcher.start()
    typer.echo(f"watching {', '.join(r['path'] for r in watcher.state()['roots'])}", err=True)
    shown: Any = None
    last_line = 0.0
    try:
        while not stopping.wait(0.5):
            state = watcher.state()
            if state["last_job"] != shown or time.monotonic() - last_line > STATUS_EVERY_S:
                shown, last_line = state["last_job"], time.monotonic()
                typer.echo(json.dumps({k: state[k] for k in _LINE}), err=True)
        typer.echo("stopping: the running job finishes first (Ctrl-C again to leave now)", err=True)
        watcher.stop()
        while jobs.running:
            time.sleep(0.2)
    except KeyboardInterrupt:
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    finally:
        watcher.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        library.store.close()


def _adopt_store(settings: Any, library: Any) -> None:
    """Open the store before watching, so a collection the configured models cannot write is
    refused now rather than failing every batch (an unreachable server is retried by jobs)."""
    from timbre.cli.watching import watch_refusal
    from timbre.errors import UnavailableError

    refusal = watch_refusal(settings, library)
    if refusal is not None:
        raise refusal
    try:
        library.store.get()
    except UnavailableError as exc:
        typer.echo(f"warning: {exc}; each batch tries again", err=True)


_LINE = ("roots", "pending", "last_event_at", "running_job", "last_job", "problems")
