"""``timbre reanalyse``: give already indexed samples the current audio facts (no re-embedding)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from timbre.cli.app import app, fail
from timbre.errors import TimbreError


@app.command()
def reanalyse(
    all_points: Annotated[
        bool,
        typer.Option("--all", help="Analyse points already at the current analysis version too."),
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="Analyse and report; write nothing.")] = False,
    no_snapshot: Annotated[
        bool, typer.Option(help="Do not export a FAISS snapshot afterwards.")
    ] = False,
) -> None:
    """Fill BPM, key, their sources and confidences, and waveform peaks from each sample's file.

    For samples indexed before the audio analysis (or by an older version of it): each file
    is decoded and analysed as ingest would; names and tags still win; vectors and labels are
    not touched. Prints a JSON report (gained BPMs and keys, sources, unreadable files).
    """
    from ingest.pipeline import Limits
    from ingest.reanalyse import reanalyse as run
    from timbre.cli.store import _rewrite
    from timbre.embedding.embedder import describe_models
    from timbre.embedding.families import get_family
    from timbre.embedding.files import resolve_model_files
    from timbre.settings import load_settings

    try:
        settings = load_settings()
        family = get_family(settings.models.family)
        files = resolve_model_files(settings.models, family.audio_parts)
        info = describe_models(settings.models, files)
        rate, resampler = family.decoding(files)  # what ingest analyses at; no model loads
        limits = Limits(
            rate, settings.audio.max_duration_s, settings.audio.max_file_bytes, resampler
        )
        out = _rewrite(
            settings,
            info,
            lambda store: run(
                store,
                limits,
                batch_size=settings.ingest.reanalyse_batch,
                unpitched=frozenset(settings.ingest.unpitched_instruments),
                everything=all_points,
                dry_run=dry_run,
            ),
            dry_run=dry_run,
            no_snapshot=no_snapshot,
        )
    except TimbreError as exc:
        raise fail(exc) from exc
    typer.echo(json.dumps(out, indent=2))
