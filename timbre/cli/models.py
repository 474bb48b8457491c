"""``timbre models`` (download, random bundles) and ``timbre embed``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from timbre.cli.app import app, models_app
from timbre.errors import AudioError, ExitCode

if TYPE_CHECKING:
    from timbre.settings import Settings


FAMILY_HELP = "Model family: clamp3 or clap (default: models.family)."


def _with_family(settings: Settings, family: str | None) -> Settings:
    from timbre.embedding.embedder import FAMILY_NAMES

    if family is None:
        return settings
    if family not in FAMILY_NAMES:
        raise typer.BadParameter(f"one of {', '.join(FAMILY_NAMES)}", param_hint="--family")
    models = settings.models.model_copy(update={"family": family})
    return settings.model_copy(update={"models": models})


@models_app.command("download")
def models_download(
    to: Annotated[
        Path | None,
        typer.Option("--to", help="Also write a bundle folder here (for images and offline use)."),
    ] = None,
    family: Annotated[str | None, typer.Option("--family", help=FAMILY_HELP)] = None,
) -> None:
    """Fetch a family's pinned model files from the hub, verify them, optionally write a
    bundle (several families may share one bundle folder)."""
    from timbre.embedding.files import download_bundle, resolve_model_files
    from timbre.settings import load_settings

    settings = _with_family(load_settings(), family)
    if to is not None:
        download_bundle(settings.models, to)
        typer.echo(f"bundle written to {to}")
    else:
        files = resolve_model_files(settings.models.model_copy(update={"bundle": None}))
        for part, source in files.sources.items():
            typer.echo(f"{part}: {source.ref()}")
    _check_loads(settings, to)


def _check_loads(settings: Settings, bundle: Path | None) -> None:
    """Load both paths once: a file that downloads but does not load fails here, not later."""
    from timbre.embedding.embedder import load_audio_embedder, load_text_embedder

    models = settings.models.model_copy(update={"bundle": bundle})
    audio = load_audio_embedder(models)
    text = load_text_embedder(models)
    typer.echo(
        f"verified: {models.family} audio and text towers load "
        f"({audio.dim}-d, {text.info.text_model})"
    )
    typer.echo(f"runtime: audio {audio.runtime}, text {text.runtime}")
    typer.echo(f"exports: {models.export_dir}")


@models_app.command("export")
def models_export(
    family: Annotated[str | None, typer.Option("--family", help=FAMILY_HELP)] = None,
) -> None:
    """Export a family's models to ONNX now (once per checkpoint), so starts need no torch."""
    from timbre.settings import load_settings

    settings = _with_family(load_settings(), family)
    _check_loads(settings, settings.models.bundle)


@models_app.command("random")
def models_random(
    target: Annotated[Path, typer.Argument(help="Folder to write the bundle into.")],
    size: Annotated[
        str, typer.Option("--size", help="tiny (tests) or full (official dimensions).")
    ] = "tiny",
    seed: Annotated[int, typer.Option(help="Random seed of the weights.")] = 0,
    safetensors: Annotated[
        bool, typer.Option(help="Write MERT as model.safetensors instead of pytorch_model.bin.")
    ] = False,
    family: Annotated[
        str, typer.Option("--family", help="Model family: clamp3 or clap.")
    ] = "clamp3",
) -> None:
    """Write a family's random-weight files in the hub's layout under TARGET/<part>/ (beside
    other families' files already there). Results are meaningless."""
    from timbre.embedding.embedder import FAMILY_NAMES, get_family
    from timbre.embedding.files import RANDOM_WEIGHTS_WARNING
    from timbre.embedding.random_bundle import write_random_bundle

    if size not in ("tiny", "full"):
        raise typer.BadParameter("size must be 'tiny' or 'full'", param_hint="--size")
    if family not in FAMILY_NAMES:
        raise typer.BadParameter(f"one of {', '.join(FAMILY_NAMES)}", param_hint="--family")
    chosen: Literal["tiny", "full"] = "tiny" if size == "tiny" else "full"
    if family == "clamp3":
        write_random_bundle(target, chosen, seed=seed, safetensors=safetensors)
    else:
        get_family(family).write_random(target, chosen, seed)
    typer.echo(f"wrote a {size} random-weight {family} bundle to {target}")
    typer.echo(f"warning: {RANDOM_WEIGHTS_WARNING}", err=True)


@app.command()
def embed(
    files: Annotated[list[Path] | None, typer.Argument(help="Audio files to embed.")] = None,
    text: Annotated[
        list[str] | None, typer.Option("--text", "-t", help="A text to embed (repeatable).")
    ] = None,
    batch: Annotated[int, typer.Option(help="Files decoded and embedded together.")] = 16,
) -> None:
    """Print one JSON line per input: source, kind, pipeline_version and the vector."""
    from timbre.settings import load_settings

    paths, texts = list(files or []), list(text or [])
    if not paths and not texts:
        raise typer.BadParameter("give audio FILES and/or --text")
    failed = 0
    settings = load_settings()
    if texts:
        failed += _embed_texts(settings, texts)
    if paths:
        failed += _embed_files(settings, paths, batch)
    raise typer.Exit(ExitCode.PARTIAL if failed else ExitCode.OK)


def _emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _embed_texts(settings: Settings, texts: list[str]) -> int:
    from timbre.embedding.embedder import load_text_embedder

    embedder = load_text_embedder(settings.models)
    failed = 0
    for t in texts:
        try:
            vector = embedder.embed([t])[0]
        except ValueError as exc:
            failed += 1
            _emit({"source": t, "kind": "text", "error": {"code": "bad_text", "message": str(exc)}})
            continue
        _emit(
            {
                "source": t,
                "kind": "text",
                "pipeline_version": embedder.info.pipeline_version,
                "vector": [round(float(x), 7) for x in vector],
            }
        )
    return failed


def _embed_files(settings: Settings, paths: list[Path], batch: int) -> int:
    from timbre.audio.decode import decode_file
    from timbre.embedding.embedder import load_audio_embedder

    embedder = load_audio_embedder(settings.models)
    failed = 0
    for start in range(0, len(paths), batch):
        records: list[dict[str, Any]] = []
        waves, slots = [], []
        for path in paths[start : start + batch]:
            record: dict[str, Any] = {"source": str(path), "kind": "audio"}
            try:
                decoded = decode_file(
                    path,
                    sample_rate=embedder.sample_rate,
                    max_duration_s=settings.audio.max_duration_s,
                    max_file_bytes=settings.audio.max_file_bytes,
                    resampler=embedder.resampler,
                )
            except AudioError as exc:
                failed += 1
                record["error"] = {"code": exc.code, "message": exc.reason}
            else:
                waves.append(decoded.samples)
                slots.append(record)
            records.append(record)
        for record, vector in zip(slots, embedder.embed(waves), strict=True):
            record["pipeline_version"] = embedder.info.pipeline_version
            record["vector"] = [round(float(x), 7) for x in vector]
        for record in records:
            _emit(record)
    return failed
