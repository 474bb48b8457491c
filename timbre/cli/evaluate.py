"""``timbre eval``: each indexed model family graded on the library's own labels, side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from timbre.cli.app import app
from timbre.errors import TimbreError

if TYPE_CHECKING:
    from timbre.settings import Settings
    from timbre.store import VectorStore

FIELDS = ("path", "paths", "instrument", "instrument_source", "duration_s")
CHANCE_WARNING = (
    "RANDOM WEIGHTS: at least one family here runs random weights; its figures are at CHANCE "
    "LEVEL and say nothing about the model. Compare real checkpoints only."
)


@app.command("eval")
def evaluate(
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels",
            help="CSV of path,label (default: the instrument words of folder and file names).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Grade every model family indexed in this data dir on the library's own labels.

    Index the library once per family (set models.family, run `timbre ingest`: the previous
    family's collection is kept beside the new one), then run this with a bundle folder that
    holds every family's files. Text->audio R@1, R@10 and mAP of plain category queries,
    audio->audio P@10 within a category, and the near-duplicate groups each family finds.
    """
    from timbre.settings import load_settings

    settings = load_settings()
    report = _graded(settings, labels)
    if report["chance_level"]:
        typer.echo(f"WARNING: {CHANCE_WARNING}", err=True)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(_table(report))


def _graded(settings: Settings, labels_csv: Path | None) -> dict[str, Any]:
    """The report over every family's collection; reading makes no store where none is."""
    import logging

    from timbre.embedding.embedder import describe_models
    from timbre.store import embedded_dir, open_store

    if settings.qdrant.url is None and not embedded_dir(settings.data_dir).exists():
        return _empty_report(labels_csv)
    info = describe_models(settings.models)
    # Every family's collection is read here, so a live one of another family than
    # models.family is expected: the store's advice to re-index is not for this command.
    lifecycle = logging.getLogger("timbre.store.lifecycle")
    level = lifecycle.level
    lifecycle.setLevel(logging.ERROR)
    try:
        store = open_store(settings, info, reindex=True)
    finally:
        lifecycle.setLevel(level)
    try:
        return _report(settings, store, labels_csv)
    finally:
        store.close()


def _empty_report(labels_csv: Path | None) -> dict[str, Any]:
    return {
        "labels": str(labels_csv) if labels_csv else "instrument words of folder and file names",
        "chance": {},
        "chance_level": False,
        "families": {},
    }


def _report(settings: Settings, store: VectorStore, labels_csv: Path | None) -> dict[str, Any]:
    import numpy as np

    from timbre.embedding.embedder import describe_models, load_text_embedder
    from timbre.embedding.info import family_of_key
    from timbre.evaluation import chance, labels_from_csv, labels_from_names, score

    chosen: dict[str, tuple[str, dict[str, Any], bool]] = {}
    for name, meta, live in store.generations():
        if not meta.get("published_at") and not live:
            continue  # an unfinished re-index
        family = family_of_key(meta.get("audio_key"))
        held = chosen.get(family)
        if held is None or live or (not held[2] and meta["published_at"] > held[1]["published_at"]):
            chosen[family] = (name, meta, live)
    families: dict[str, Any] = {}
    chance_level = False
    baseline: dict[str, float] = {}
    for family, (name, meta, live) in sorted(chosen.items()):
        entry: dict[str, Any] = {"collection": name, "live": live}
        families[family] = entry
        models = settings.models.model_copy(update={"family": family})
        try:
            info = describe_models(models)
        except TimbreError as exc:
            entry["skipped"] = f"the {family} model files are not available: {exc}"
            continue
        if info.audio_key() != meta.get("audio_key"):
            entry["skipped"] = (
                f"built by {meta.get('audio_key')}, but the configured {family} models are "
                f"{info.audio_key()}: their text queries would not match those vectors"
            )
            continue
        records = store.read_generation(name, FIELDS)
        if not records:
            entry["skipped"] = "the collection holds no sounds yet: run `timbre ingest`"
            continue
        payloads = [r.payload for r in records]
        labels = (
            labels_from_csv(labels_csv, payloads) if labels_csv else labels_from_names(payloads)
        )
        vectors = np.stack([np.asarray(r.vector, np.float32) for r in records])
        names = sorted({x for x in labels if x is not None})
        text = load_text_embedder(models)
        queries = dict(zip(names, text.embed(names), strict=True)) if names else {}
        d = settings.duplicates
        scores = score(
            vectors,
            labels,
            queries,
            [p.get("duration_s") for p in payloads],
            min_cosine=d.min_cosine_of(family),
            duration_tolerance_s=d.duration_tolerance_s,
            duration_tolerance_ratio=d.duration_tolerance_ratio,
        )
        random = bool(meta.get("model", {}).get("random_weights") or info.random_weights)
        chance_level = chance_level or random
        entry.update(scores.as_dict(), random_weights=random, models=info.models())
        baseline = chance(labels)
    return {
        **_empty_report(labels_csv),
        "chance": baseline,
        "chance_level": chance_level,
        "families": families,
    }


ROWS = (
    *((name, name) for name in ("collection", "live", "sounds", "labelled", "categories")),
    ("text_r1", "text->audio R@1"),
    ("text_r10", "text->audio R@10"),
    ("text_map", "text->audio mAP"),
    ("audio_p10", "audio->audio P@10"),
    ("duplicate_groups", "near-duplicate groups"),
    ("random_weights", "random weights"),
)


def _category_lines(families: dict[str, Any], width: int) -> list[str]:
    """One row per category: each family's R@10 (its query found one in the first 10: 1 or
    0) and P@10, then what chance scores on a category of that size."""
    categories: dict[str, dict[str, Any]] = {}  # name -> its figures in the first family
    for entry in families.values():
        for name, figures in entry.get("per_category", {}).items():
            categories.setdefault(name, figures)
    if not categories:
        return []
    heading = "text R@10 / audio P@10".ljust(width * len(families))
    lines = ["by category (sounds)".ljust(24) + heading + "chance"]
    for name in sorted(categories):
        cells = []
        for entry in families.values():
            figures = entry.get("per_category", {}).get(name)
            cell = "-" if figures is None else _pair(figures["text_r10"], figures["audio_p10"])
            cells.append(cell.ljust(width))
        first = categories[name]
        title = f"  {name} ({first['sounds']})"
        chance = _pair(first["chance_r10"], first["chance_p10"])
        lines.append(title.ljust(24) + "".join(cells) + chance)
    return lines


def _pair(r10: float, p10: float) -> str:
    return f"{r10:.0f} / {p10:.3f}" if r10 in (0.0, 1.0) else f"{r10:.3f} / {p10:.3f}"


def _table(report: dict[str, Any]) -> str:
    families = report["families"]
    if not families:
        return "no collection is indexed in this data dir yet: run `timbre ingest` first"
    names = list(families)
    width = max(22, *(len(str(families[f].get("collection", ""))) + 2 for f in names))
    lines = ["".ljust(24) + "".join(f.ljust(width) for f in names)]
    for key, title in ROWS:
        cells = []
        for f in names:
            value = families[f].get(key, "-")
            cells.append((f"{value:.3f}" if isinstance(value, float) else str(value)).ljust(width))
        lines.append(title.ljust(24) + "".join(cells))
    lines.extend(_category_lines(families, width))
    for f in names:
        if "skipped" in families[f]:
            lines.append(f"{f}: skipped: {families[f]['skipped']}")
    c = report["chance"]
    lines.append(
        f"labels: {report['labels']}; chance level: R@1 {c.get('text_r1', 0):.3f}, "
        f"P@10 {c.get('audio_p10', 0):.3f}"
    )
    if report["chance_level"]:
        lines.append("!" * 72)
        lines.append(f"!! {CHANCE_WARNING}")
        lines.append("!" * 72)
    return "\n".join(lines)
