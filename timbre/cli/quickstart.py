"""``timbre quickstart``: a library indexed and searched in one go (README command 1)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from timbre.cli.app import app
from timbre.errors import ExitCode, TimbreError


@app.command()
def quickstart(
    library: Annotated[
        Path | None, typer.Argument(help="Your sample folder; default: a generated demo library.")
    ] = None,
) -> None:
    """Index a library on the embedded store and try a few searches: the whole path in one go.

    Without a LIBRARY, a generated demo library is indexed into a data dir of its own
    (<data dir>/demo), apart from your own library's index. Uses the configured models (the
    Hugging Face hub by default); where they cannot be had it says so and uses a random-weight
    test bundle, recorded for that data dir, which exercises every step but makes the search
    results meaningless.
    """
    from timbre.bundle_record import random_bundle_dir, record_bundle
    from timbre.cli.data_dir import demo_data_dir, holds_index
    from timbre.embedding.files import RANDOM_WEIGHTS_WARNING, resolve_model_files
    from timbre.settings import load_settings

    settings = load_settings()
    home = settings.data_dir
    data = home if library is not None else demo_data_dir(home)
    if library is not None and not library.is_dir():
        raise typer.BadParameter(f"{library} is not a folder", param_hint="LIBRARY")
    os.environ["TIMBRE_DATA_DIR"] = str(data)  # every step below works on this data dir
    try:
        resolve_model_files(load_settings().models)
    except TimbreError as exc:
        from timbre.embedding.embedder import get_family
        from timbre.embedding.files import FAMILY_PARTS

        bundle = random_bundle_dir(home)
        typer.echo(f"warning: the models are unavailable: {exc}", err=True)
        typer.echo(
            f"warning: using a random-weight test bundle at {bundle} instead, recorded for "
            f"{data}. {RANDOM_WEIGHTS_WARNING}",
            err=True,
        )
        if not all((bundle / p).is_dir() for p in FAMILY_PARTS[settings.models.family]):
            get_family(settings.models.family).write_random(bundle, "tiny", 0)
        reason = "the models could not be had when `timbre quickstart` ran"
        record_bundle(data, bundle, reason=reason)
        if data != home and not holds_index(settings.model_copy(update={"data_dir": home})):
            # The user's own data dir is still empty: their first `timbre ingest` runs on the
            # same machine, without the hub, and must not stall on it.
            record_bundle(home, bundle, reason=reason)
    if library is None:
        from ingest.synthetic import make_library

        library = data / "library"
        if not library.exists():
            typer.echo(f"generating a demo sample library in {library} ...", err=True)
            make_library(library)
    typer.echo(
        f"indexing {library} into {data} (embedded Qdrant Edge + FAISS snapshot) ...", err=True
    )
    steps = (
        ["ingest", str(library)],
        ["search", "punchy kick", "-k", "5"],
        ["search", "warm pad", "--kind", "loop", "-k", "3"],
    )
    for argv in steps:
        typer.echo(f"\n$ timbre {' '.join(argv)}", err=True)
        try:
            app(argv, standalone_mode=False)
        except typer.Exit as done:
            if done.exit_code not in (ExitCode.OK, ExitCode.PARTIAL):
                raise
    url = f"http://127.0.0.1:{settings.api.port}/"
    if data == home:
        typer.echo(f"\nNext: timbre serve   # then open {url}", err=True)
        return
    typer.echo(
        f"\nThe demo has a data dir of its own: {data}\n"
        f"Next: TIMBRE_DATA_DIR='{data}' timbre serve   # then open {url}\n"
        f"Your own samples go to {home}: timbre ingest ~/Samples",
        err=True,
    )
