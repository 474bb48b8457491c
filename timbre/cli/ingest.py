"""``timbre ingest``: run a job on the embedded store or a server, or hand it to the service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from timbre.cli.app import app, fail
from timbre.errors import StoreLockedError, TimbreError

if TYPE_CHECKING:
    from timbre.settings import Settings


def _ingest_through_service(
    settings: Settings, locked: Exception, roots: tuple[Path, ...], options: Any
) -> tuple[dict[str, Any], int]:
    """Run the job inside the service that owns the embedded store, printing its progress."""
    import time

    import httpx

    from timbre.cli.wiring import read_service_file

    service = read_service_file(settings)
    if service is None:
        raise StoreLockedError(
            f"{locked}; no running Timbre service announced itself to take the job"
        )
    url = service["url"]
    typer.echo(
        f"the embedded store is owned by the service at {url}: handing the job to it", err=True
    )
    headers = {}
    if settings.api.api_key is not None:
        headers["X-API-Key"] = settings.api.api_key.get_secret_value()
    body = {
        "paths": [str(p.expanduser().resolve()) for p in roots],
        "prune": options.prune,
        "dry_run": options.dry_run,
        "profile": options.profile,
    }
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            started = client.post("/v1/ingest", json=body)
            if started.status_code != 202:
                detail = started.json().get("detail", started.text)
                raise StoreLockedError(
                    f"the service at {url} refused the job ({started.status_code}): {detail}"
                )
            job_id = started.json()["job_id"]
            shown = None
            while True:
                state = client.get(f"/v1/ingest/{job_id}").json()
                progress = state.get("progress") or {}
                line = (
                    f"{progress.get('indexed', 0)}/{progress.get('to_embed', '?')} embedded, "
                    f"{progress.get('failed', 0)} failed"
                )
                if line != shown:
                    typer.echo(f"job {job_id}: {line}", err=True)
                    shown = line
                if state["state"] != "running":
                    break
                time.sleep(1.0)
    except httpx.HTTPError as exc:
        raise StoreLockedError(
            f"{locked}; the service at {url} could not be reached: {exc}"
        ) from exc
    if state["state"] == "failed":
        raise StoreLockedError(f"the job failed inside the service: {state.get('error')}")
    return state["summary"], int(state["exit_code"])


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


@app.command()
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
        bool, typer.Option(help="Forget paths under these roots that no longer exist.")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="Report what would change; write nothing.")] = False,
    no_snapshot: Annotated[
        bool, typer.Option(help="Do not export a FAISS snapshot at the end.")
    ] = False,
) -> None:
    """Index a sample library: decode, embed, upsert; safe to re-run or kill at any moment.

    Exit codes: 0 all indexed, 1 finished with failed files (see the failures report),
    2 could not run.
    """
    from ingest.job import options_from_settings, run_ingest
    from timbre.embedding.embedder import (
        describe_models,
        load_audio_embedder,
        load_text_embedder,
    )
    from timbre.labels import build_labeller
    from timbre.settings import load_settings
    from timbre.store import open_store

    if profile not in (None, "parallel", "sequential"):
        raise typer.BadParameter("parallel or sequential", param_hint="--profile")
    try:
        settings = load_settings()
        roots = tuple(paths)
        missing = [str(p) for p in roots if not p.exists()]
        if missing:
            raise typer.BadParameter(f"no such library root: {', '.join(missing)}")
        options = options_from_settings(
            settings,
            roots,
            profile=profile,
            workers=workers,
            batch_files=batch_size,
            shard=_parse_shard(shard),
            prune=prune,
            dry_run=dry_run,
        )
        info = describe_models(settings.models)
        try:
            store = open_store(settings, info, reindex=True)
        except StoreLockedError as exc:
            # A running service owns the embedded store: hand the job to it.
            summary, code = _ingest_through_service(settings, exc, roots, options)
            typer.echo(json.dumps(summary, indent=2))
            raise typer.Exit(code) from None
        try:
            # Label vectors first (cache, or the text tower, freed before MERT loads), so the
            # ~1 GB text tower never sits in memory beside the audio models.
            labeller = (
                None
                if dry_run
                else build_labeller(
                    settings, info, lambda: load_text_embedder(settings.models), free_text=True
                )
            )
            embedder = None if dry_run else load_audio_embedder(settings.models)
            result = run_ingest(
                settings,
                options,
                embedder=embedder,  # type: ignore[arg-type]  # unused by a dry run
                model=info,
                store=store,
                snapshot=False if no_snapshot else None,
                labeller=labeller,
            )
        finally:
            store.close()
    except TimbreError as exc:
        raise fail(exc) from exc
    typer.echo(json.dumps(result.summary, indent=2))
    raise typer.Exit(result.exit_code)
