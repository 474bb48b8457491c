"""``timbre ingest``: run a job on the embedded store or a server, or hand it to the service.

The command's options are an :class:`app.schemas.IngestIn`, the one request of an ingest job
(also the body of ``POST /v1/ingest`` and of the hand-off to a running service).
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from timbre.cli.app import app, fail
from timbre.cli.summary import human_summary, write_summary
from timbre.diskspace import as_disk_full
from timbre.errors import ExitCode, StoreLockedError, TimbreError
from timbre.store.pathtext import path_from_text, path_text

if TYPE_CHECKING:
    from app.schemas import IngestIn
    from ingest.options import JobOptions
    from timbre.settings import Settings


_FLAGS = {"batch_files": "--batch-size"}
"""Request fields whose option is not named after them."""


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


def job_options(settings: Settings, request: IngestIn, **extra: Any) -> JobOptions:
    """The job ``request`` asks for: its options over the ``ingest`` settings."""
    from ingest.job import options_from_settings

    def paths(texts: list[str]) -> tuple[Path, ...]:
        return tuple(path_from_text(t) for t in texts)

    return options_from_settings(
        settings,
        paths(request.paths),
        **request.model_dump(exclude={"paths", "changed", "gone", "snapshot"}),
        changed=None if request.changed is None else paths(request.changed),
        gone=paths(request.gone),
        **extra,
    )


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
    batch_files: Annotated[
        int | None, typer.Option("--batch-size", help="Files embedded per batch.")
    ] = None,
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
    from pydantic import ValidationError

    from app.schemas import IngestIn

    try:
        request = IngestIn.model_validate(
            {
                "paths": [path_text(p) for p in paths],
                "profile": profile,
                "workers": workers,
                "batch_files": batch_files,
                "shard": _parse_shard(shard),
                "prune": prune,
                "dry_run": dry_run,
                "rehash": rehash,
                "snapshot": False if no_snapshot else None,
            }
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0])
        hint = _FLAGS.get(name, "--" + name.replace("_", "-"))
        raise typer.BadParameter(error["msg"], param_hint=hint) from None
    try:
        summary, code = _run(request)
    except (typer.Exit, typer.BadParameter, typer.Abort):
        raise  # click's own exceptions: usage errors and exits, not crashes
    except KeyboardInterrupt:
        typer.echo("interrupted: nothing is lost; run the same command again to finish", err=True)
        raise typer.Exit(ExitCode.INTERRUPTED) from None
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
        raise typer.Exit(ExitCode.CRASHED) from exc
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


def _run(request: IngestIn, *, rebuild: bool = False) -> tuple[dict[str, Any], int]:
    """Run the job here, or inside the service that owns the embedded store (unless it is a
    ``rebuild``, which replaces the live collection: not a job for a running service)."""
    from ingest.job import run_ingest
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
    options = job_options(settings, request)
    missing = [str(p) for p in options.roots if not p.exists()]
    if missing:
        raise typer.BadParameter(f"no such library root: {', '.join(missing)}")
    info = describe_models(settings.models)
    try:
        store = open_store(settings, info, reindex=True)
    except StoreLockedError as exc:
        if rebuild:
            raise
        return ingest_through_service(settings, exc, request)
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
            snapshot=request.snapshot,
            labeller=labeller,
            rebuild=rebuild,
        )
    finally:
        store.close()
    return result.summary, result.exit_code
