"""``timbre ingest``: run a job on the embedded store or a server, or hand it to the service.

Exit codes: 0 all indexed; 1 finished, but files failed or could not be read, or no audio was
found; 2 could not run (a full disk among the reasons); 3 crashed on an unexpected error (a
bug); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import json
import logging
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer

from timbre.cli.app import app, fail
from timbre.cli.summary import human_summary, write_summary
from timbre.diskspace import as_disk_full
from timbre.errors import StoreLockedError, TimbreError

log = logging.getLogger("timbre.ingest")

EXIT_CRASHED, EXIT_INTERRUPTED = 3, 130  # as ingest.report (which the CLI loads lazily)


def _parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        index, total = (int(part) for part in text.split("/"))
    except ValueError:
        raise typer.BadParameter("use I/N, e.g. 0/4", param_hint="--shard") from None
    if total < 1 or not 0 <= index < total:
        raise typer.BadParameter(f"need 0 <= I < N, got {text}", param_hint="--shard")
    return index, total


@app.command(
    epilog="\b\nExit codes:\n"
    "  0    every file found is indexed\n"
    "  1    finished, but files failed or could not be read (see the\n"
    "       failures and skipped reports), or no audio under the roots\n"
    "  2    could not run (settings, models, store, roots; the disk is full;\n"
    "       or the service refused the job)\n"
    "  3    crashed on an unexpected error (a bug: report the traceback)\n"
    "  130  interrupted (Ctrl-C): run it again to finish, nothing is lost"
)
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Library folders (or files) to index.")],
    profile: Annotated[
        str | None, typer.Option(help="parallel (fast, default) or sequential (least memory).")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Decoding worker processes.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Files embedded per batch.")] = None,
    shard: Annotated[
        str | None, typer.Option(help="I/N: index only this worker's share of the library.")
    ] = None,
    prune: Annotated[
        bool,
        typer.Option(help="Forget paths under these roots that are gone (never unreadable ones)."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option(help="List what would change (embed, add, prune); write nothing.")
    ] = False,
    no_snapshot: Annotated[
        bool, typer.Option(help="Do not export a FAISS snapshot at the end.")
    ] = False,
    rehash: Annotated[
        bool,
        typer.Option(
            help="Read every file again to verify its content hash (the cache trusts size "
            "and mtime, so a file rewritten in place with both unchanged is missed)."
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the full JSON summary instead of a short one.")
    ] = False,
) -> None:
    """Index a sample library: decode, embed, upsert; safe to re-run or kill at any moment.

    Beside a running `timbre serve` that owns the embedded store, the job is handed to it.
    """
    if profile not in (None, "parallel", "sequential"):
        raise typer.BadParameter("parallel or sequential", param_hint="--profile")
    if workers is not None and workers < 0:
        raise typer.BadParameter("0 or more", param_hint="--workers")
    if batch_size is not None and batch_size < 1:
        raise typer.BadParameter("1 or more", param_hint="--batch-size")
    given = {
        "profile": profile,
        "workers": workers,
        "batch_size": batch_size,
        "shard": _parse_shard(shard),
        "prune": prune,
        "dry_run": dry_run,
        "rehash": rehash,
        "snapshot": False if no_snapshot else None,
    }
    try:
        summary, code = _run(tuple(paths), given)
    except (typer.Exit, typer.BadParameter, typer.Abort):
        raise  # click's own exceptions: usage errors and exits, not crashes
    except KeyboardInterrupt:
        typer.echo("interrupted: nothing is lost; run the same command again to finish", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except TimbreError as exc:
        raise fail(exc) from exc
    except Exception as exc:
        full = as_disk_full(exc, "the ingest job")
        if full is not None:  # not a bug: exit 2, with the reason
            raise fail(full) from exc
        traceback.print_exc()
        typer.echo(
            f"error: the job crashed on an unexpected {type(exc).__name__}: {exc}. This is a "
            "bug: please report it with the traceback above. Re-running is safe.",
            err=True,
        )
        raise typer.Exit(EXIT_CRASHED) from exc
    written = _write_summary(summary)
    typer.echo(json.dumps(summary, indent=2) if as_json else human_summary(summary, written))
    raise typer.Exit(code)


def _write_summary(summary: dict[str, Any]) -> Path | None:
    """The summary in its file; none for a dry run, which writes nothing."""
    from timbre.settings import load_settings

    if summary.get("dry_run"):
        return None
    try:
        return write_summary(load_settings().data_dir, summary)
    except TimbreError:
        return None


def _run(roots: tuple[Path, ...], given: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Run the job here, or inside the service that owns the embedded store."""
    from ingest.job import options_from_settings, run_ingest
    from timbre.cli.handoff import ingest_through_service
    from timbre.embedding.embedder import (
        describe_models,
        load_audio_embedder,
        load_text_embedder,
    )
    from timbre.labels import build_labeller
    from timbre.settings import load_settings
    from timbre.store import open_store

    settings = load_settings()
    missing = [str(p) for p in roots if not p.exists()]
    if missing:
        raise typer.BadParameter(f"no such library root: {', '.join(missing)}")
    options = options_from_settings(
        settings,
        roots,
        profile=given["profile"],
        workers=given["workers"],
        batch_files=given["batch_size"],
        shard=given["shard"],
        prune=given["prune"],
        dry_run=given["dry_run"],
        rehash=given["rehash"],
    )
    info = describe_models(settings.models)
    try:
        store = open_store(settings, info, reindex=True)
    except StoreLockedError as exc:
        if given.get("rebuild"):
            raise  # a rebuild replaces the live collection: not a job for a running service
        # A running service owns the embedded store: hand the job, every option, to it.
        return ingest_through_service(settings, exc, roots, given)
    try:
        # Label vectors first (cache, or the text tower, freed before MERT loads), so the
        # ~1 GB text tower never sits in memory beside the audio models.
        labeller = (
            None
            if options.dry_run
            else build_labeller(
                settings, info, lambda: load_text_embedder(settings.models), free_text=True
            )
        )
        embedder = (
            None
            if options.dry_run
            # a parallel job embeds batches of files; a sequential one, one file at a time
            else load_audio_embedder(settings.models, batches=options.profile == "parallel")
        )
        result = run_ingest(
            settings,
            options,
            embedder=embedder,  # type: ignore[arg-type]  # unused by a dry run
            model=info,
            store=store,
            snapshot=given["snapshot"],
            labeller=labeller,
            rebuild=bool(given.get("rebuild")),
        )
    finally:
        store.close()
    return result.summary, result.exit_code
