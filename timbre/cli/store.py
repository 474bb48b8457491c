"""``timbre store``: export a snapshot, publish a sharded re-index, compact or rebuild the store."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import typer

from timbre.cli.app import store_app
from timbre.errors import ExitCode

if TYPE_CHECKING:
    from timbre.embedding.info import ModelInfo
    from timbre.settings import Settings
    from timbre.store import VectorStore


class _Report(Protocol):
    changed: int

    def as_dict(self) -> dict[str, Any]: ...


@contextmanager
def _live(reindex: bool = False) -> Iterator[tuple[Settings, VectorStore]]:
    """The settings and the live store, closed afterwards."""
    from timbre.cli.data_dir import require_index
    from timbre.embedding.embedder import describe_models
    from timbre.settings import load_settings
    from timbre.store import open_store

    settings = load_settings()
    require_index(settings)
    store = open_store(settings, describe_models(settings.models), reindex=reindex)
    try:
        yield settings, store
    finally:
        store.close()


def _export(settings: Settings, store: VectorStore) -> dict[str, Any]:
    from timbre.store import snapshots_dir
    from timbre.store.snapshot import export_snapshot

    manifest = export_snapshot(
        store.live(),
        snapshots_dir(settings.data_dir),
        source_mode=store.mode,
        keep=settings.snapshot.keep,
    )
    return {
        "snapshot": manifest.name,
        "count": manifest.count,
        "collection": manifest.source_collection,
    }


def _rewrite(
    settings: Settings,
    info: ModelInfo,
    run: Callable[[VectorStore], _Report],
    *,
    dry_run: bool,
    no_snapshot: bool,
) -> dict[str, Any]:
    """Run a payload rewrite (relabel, reanalyse) on the live collection; its report as a dict,
    with the snapshot exported afterwards when it changed anything (unless told not to)."""
    from timbre.cli.data_dir import require_index
    from timbre.store import open_store

    require_index(settings)
    store = open_store(settings, info)
    try:
        report = run(store)
        out = report.as_dict()
        if not dry_run and not no_snapshot and report.changed:
            out["snapshot"] = _export(settings, store)
    finally:
        store.close()
    return out


@store_app.command("snapshot")
def store_snapshot() -> None:
    """Export a FAISS snapshot of the live collection and publish it (the API picks it up)."""
    with _live() as (settings, store):
        typer.echo(json.dumps(_export(settings, store)))


@store_app.command("optimize")
def store_optimize() -> None:
    """Compact the live collection (ingest jobs the service runs leave this to you): ~40 s per
    100k points not compacted yet; stop the service first (the store has one owner)."""
    import time

    with _live() as (_, store):
        started = time.perf_counter()
        changed = store.optimize()
        seconds = round(time.perf_counter() - started, 3)
        typer.echo(
            json.dumps({"collection": store.live().name, "changed": changed, "seconds": seconds})
        )


@store_app.command("publish")
def store_publish() -> None:
    """Publish the collection a sharded re-index built for the loaded models, once every
    shard's job has finished, and export its snapshot."""
    with _live(reindex=True) as (settings, store):
        if not store.needs_reindex:
            typer.echo(f"the live collection {store.live().name} already matches the loaded models")
            return
        generation = store.begin_generation()
        generation.publish()
        typer.echo(json.dumps({"published": generation.name, **_export(settings, store)}))


@store_app.command("rebuild")
def store_rebuild(
    from_files: Annotated[
        bool,
        typer.Option(
            "--from-files",
            help="Re-read the library (the roots this data dir indexes) instead of the "
            "snapshot: slower, but it also recovers what was indexed after the snapshot.",
        ),
    ] = False,
) -> None:
    """Rebuild a damaged live collection into a new one and make that the live one: from the
    published snapshot (every payload field and the exact vectors; its checksums are verified),
    or from the files. The damaged collection is kept as the previous generation until the next
    rebuild or re-index deletes it. Stop the service first (the store has one owner)."""
    code: int = ExitCode.OK
    if from_files:
        out, code = _rebuild_from_files()
    else:
        from timbre.store import snapshots_dir
        from timbre.store.integrity import rebuild_from_snapshot

        with _live(reindex=True) as (settings, store):
            out = rebuild_from_snapshot(store, snapshots_dir(settings.data_dir), store.info)
            out["snapshot"] = _export(settings, store)
    typer.echo(json.dumps(out, indent=2))
    raise typer.Exit(code)  # from the files: the exit codes of `timbre ingest`


def _rebuild_from_files() -> tuple[dict[str, Any], int]:
    from app.schemas import IngestIn
    from timbre.cli.ingest import _run
    from timbre.cli.wiring import service_roots
    from timbre.errors import ConfigError
    from timbre.settings import load_settings
    from timbre.store.pathtext import path_text

    known, problem = service_roots(load_settings())
    if problem is not None:
        raise ConfigError(f"library roots: {problem}; fix or remove it, then run again")
    roots = tuple(p for p in known if p.exists())
    if not roots:
        raise ConfigError(
            "no library roots to read: this data dir records none (library_roots.json) and "
            "api.library_roots is empty; run `timbre ingest FOLDER` into a fresh data dir"
        )
    return _run(IngestIn(paths=[path_text(r) for r in roots]), rebuild=True)
