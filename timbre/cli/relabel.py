"""``timbre relabel``: re-label the whole library from its stored vectors (no re-embedding)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from timbre.cli.app import app
from timbre.errors import StoreLockedError


@app.command()
def relabel(
    vocabulary: Annotated[
        Path | None,
        typer.Option(help="Vocabulary YAML to label with (default: labels.vocabulary)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Score and report (with score quantiles); write nothing.")
    ] = False,
    no_snapshot: Annotated[
        bool, typer.Option(help="Do not export a FAISS snapshot afterwards.")
    ] = False,
) -> None:
    """Label every sample anew (category, auto tags) from its stored vector, in seconds.

    Run it after editing the vocabulary or the labels thresholds. The vocabulary is embedded
    once with the text tower (then cached); no audio is read. Prints a JSON report, including
    quantiles of the best category cosines and margins for calibrating the thresholds.
    """
    from timbre.cli.data_dir import require_index
    from timbre.cli.handoff import ask_service
    from timbre.cli.owner import read_service_file
    from timbre.cli.store import _rewrite
    from timbre.embedding.embedder import describe_models, load_text_embedder
    from timbre.labels import load_vocabulary, make_labeller, relabel
    from timbre.settings import load_settings

    settings = load_settings()
    require_index(settings)  # before any model loads
    # A running service holds the embedded store (a server store is shared: no hand-over).
    if settings.qdrant.url is None and read_service_file(settings) is not None:
        if vocabulary is not None:
            raise StoreLockedError(
                "--vocabulary cannot be handed to the running service: set "
                "labels.vocabulary for it and restart it, or stop it and run this again"
            )
        out = ask_service(
            settings,
            StoreLockedError("a running service owns the embedded store"),
            "POST",
            "/v1/relabel",
            what="to relabel the library",
            json={"dry_run": dry_run, "snapshot": not no_snapshot},
        )
        typer.echo(json.dumps(out, indent=2))
        return
    info = describe_models(settings.models)
    vocab = load_vocabulary(vocabulary or settings.labels.vocabulary)
    labeller = make_labeller(
        settings,
        info,
        lambda: load_text_embedder(settings.models),
        free_text=True,
        vocabulary=vocab,
    )
    out = _rewrite(
        settings,
        info,
        lambda store: relabel(
            store, labeller, batch_size=settings.labels.relabel_batch, dry_run=dry_run
        ),
        dry_run=dry_run,
        no_snapshot=no_snapshot,
    )
    typer.echo(json.dumps(out, indent=2))
