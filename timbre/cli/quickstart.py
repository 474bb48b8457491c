"""``timbre quickstart``: a library indexed and searched in one go (README command 1)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from timbre.cli.app import EXIT_OK, EXIT_PARTIAL, app
from timbre.errors import TimbreError


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    import socket
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.create_connection((host or "huggingface.co", 443), timeout=timeout_s).close()
    except OSError:
        return False
    return True


@app.command()
def quickstart(
    library: Annotated[
        Path | None, typer.Argument(help="Your sample folder; default: a generated demo library.")
    ] = None,
) -> None:
    """Index a library on the embedded store and try a few searches: the whole path in one go.

    Uses the configured models (the Hugging Face hub by default). Where they cannot be had
    (no network, no bundle), it says so and uses a random-weight test bundle instead, which
    exercises every step but makes the search results meaningless.
    """
    from timbre.embedding.files import RANDOM_WEIGHTS_WARNING, resolve_model_files
    from timbre.settings import load_settings

    settings = load_settings()
    data = settings.data_dir
    env: dict[str, str] = {}
    if settings.models.bundle is None and not _hub_reachable():
        # Without a network, huggingface_hub would retry for half a minute: use the cache only.
        os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        resolve_model_files(settings.models)
    except TimbreError as exc:
        from timbre.embedding.families import get_family
        from timbre.embedding.files import FAMILY_PARTS

        bundle = data / "models" / "random-tiny"
        typer.echo(f"models unavailable ({exc})", err=True)
        typer.echo(
            f"warning: using a random-weight test bundle at {bundle}. {RANDOM_WEIGHTS_WARNING}",
            err=True,
        )
        if not all((bundle / p).is_dir() for p in FAMILY_PARTS[settings.models.family]):
            get_family(settings.models.family).write_random(bundle, "tiny", 0)
        env["TIMBRE_MODELS__BUNDLE"] = str(bundle)
    if library is None:
        from ingest.synthetic import make_library

        library = data / "demo-library"
        if not library.exists():
            typer.echo(f"generating a demo sample library in {library} ...", err=True)
            make_library(library)
    env["TIMBRE_API__LIBRARY_ROOTS"] = json.dumps([str(library.resolve())])
    os.environ.update(env)
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
            if done.exit_code not in (EXIT_OK, EXIT_PARTIAL):
                raise
    exports = " ".join(f"{k}='{v}'" for k, v in env.items())
    typer.echo(
        f"\nNext: {exports} timbre serve   # then open http://127.0.0.1:{settings.api.port}/",
        err=True,
    )
