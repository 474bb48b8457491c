"""``timbre reanalyse``: give already indexed samples the current facts (no re-embedding)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from timbre.cli.app import app


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
    """Re-derive every sample's facts from its file by the current rules, without re-embedding.

    Name facts (genre, instrument, pack, tags, and the BPM, key and kind names or tags state)
    are derived again for every sample, so a fixed vocabulary reaches an existing index. The
    audio (BPM, key, loop or one-shot, waveform peaks) is analysed again for samples indexed
    by an older analysis, or whose stated facts changed; names and tags still win. Vectors
    and labels are not touched. Prints a JSON report (what changed, sources, unreadable
    files); an instrument the names no longer state is cleared: `timbre relabel` fills it
    from the sound.
    """
    from ingest.metadata import MetadataRules
    from ingest.options import Limits
    from ingest.reanalyse import reanalyse as run
    from timbre.cli.data_dir import require_index
    from timbre.cli.store import _rewrite
    from timbre.embedding.embedder import describe_models, get_family
    from timbre.embedding.files import resolve_model_files
    from timbre.library_roots import recorded_roots
    from timbre.settings import load_settings

    settings = load_settings()
    require_index(settings)  # before any model loads
    family = get_family(settings.models.family)
    files = resolve_model_files(settings.models, family.audio_parts)
    info = describe_models(settings.models, files)
    rate, resampler = family.decoding(files)  # what ingest analyses at; no model loads
    limits = Limits(rate, settings.audio.max_duration_s, settings.audio.max_file_bytes, resampler)
    out = _rewrite(
        settings,
        info,
        lambda store: run(
            store,
            limits,
            batch_size=settings.ingest.reanalyse_batch,
            rules=MetadataRules.from_settings(settings.ingest),
            roots=recorded_roots(settings.data_dir),
            everything=all_points,
            dry_run=dry_run,
        ),
        dry_run=dry_run,
        no_snapshot=no_snapshot,
    )
    typer.echo(json.dumps(out, indent=2))
