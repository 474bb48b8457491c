"""``timbre duplicates``: report groups of near-duplicate samples (never deletes anything)."""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import TYPE_CHECKING, Annotated, Any

import typer

from timbre.cli.app import app
from timbre.errors import StoreLockedError

if TYPE_CHECKING:
    from timbre.settings import Settings

LEGEND = (
    "Each group is one sound stored more than once: 'keep' marks the copy the rule keeps; the "
    "figure before a path is its cosine with that copy (1 = the same sound, every one at or "
    "above min cosine), then its duration, format and sample rate."
)


def _table(report: dict[str, Any]) -> str:
    lines = [LEGEND] if report["groups"] else []
    for number, group in enumerate(report["groups"], 1):
        lines.append(
            f"group {number}: {len(group['members'])} samples, lowest cosine with the kept "
            f"{group['min_score']:.4f}"
        )
        for m in group["members"]:
            mark = "keep" if m["id"] == group["keep"] else "    "
            rate = f"{m['sample_rate'] / 1000:g} kHz" if m["sample_rate"] else "?"
            duration = f"{m['duration_s']:.3f} s" if m["duration_s"] is not None else "?"
            lines.append(
                f"  {mark} {m['score']:.4f}  {duration:>9}  {m['format'] or '?':<5} "
                f"{rate:>8}  {m['path']}"
            )
    layers = report["layers"]
    if layers:
        lines.append(
            f"{len(layers)} sets of velocity layers or round robins (names in one folder that "
            "differ only by Soft/Hard, v1, rr2, _01...): as close as copies, but parts of one "
            "instrument, so not duplicates:"
        )
        for found in layers:
            names = ", ".join(PurePath(m["path"]).name for m in found["members"])
            lines.append(f"  {found['folder']}: {names} (cosine >= {found['min_score']:.4f})")
    lines.append(
        f"{len(report['groups'])} groups, {report['duplicates']} duplicates among "
        f"{report['points']} samples ({report['seconds']:.1f} s; "
        f"min cosine {report['rules']['min_cosine']}). Rule: {report['keep_rule']}."
    )
    return "\n".join(lines)


def _from_service(
    settings: Settings, locked: Exception, min_cosine: float | None, path_prefix: str | None
) -> dict[str, Any]:
    """The same report from the service that owns the embedded store (``GET /v1/duplicates``)."""
    from timbre.cli.handoff import ask_service

    params: dict[str, Any] = {}
    if min_cosine is not None:
        params["min_cosine"] = min_cosine
    if path_prefix:
        params["filter"] = json.dumps({"path_prefix": path_prefix})
    report: dict[str, Any] = ask_service(
        settings, locked, "GET", "/v1/duplicates", what="for the report", params=params
    )
    return report


@app.command()
def duplicates(
    min_cosine: Annotated[
        float | None, typer.Option(help="Cosine at or above which sounds are one (0-1].")
    ] = None,
    path_prefix: Annotated[
        str | None, typer.Option(help="Only samples under this library folder.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Find near-duplicates (re-encoded, resampled, quieter or trimmed copies): a report only.

    Groups samples whose vectors are within --min-cosine of the one kept and whose durations
    agree, and names the one to keep in each group by a stated rule. Velocity layers and
    round robins (Cowbell-Soft/Cowbell-Hard, Snare_rr1/Snare_rr2 in one folder) are listed
    apart: they are parts of one instrument, not copies.
    """
    from timbre.cli.data_dir import require_index
    from timbre.cli.wiring import duplicate_rules
    from timbre.embedding.embedder import describe_models
    from timbre.search.duplicates import library_duplicates
    from timbre.settings import load_settings
    from timbre.store import SearchFilter, open_store

    if min_cosine is not None and not 0.0 < min_cosine <= 1.0:
        raise typer.BadParameter(
            f"a cosine above 0 and at most 1, not {min_cosine:g}", param_hint="--min-cosine"
        )
    settings = load_settings()
    require_index(settings)
    try:
        store = open_store(settings, describe_models(settings.models))
    except StoreLockedError as locked:
        report = _from_service(settings, locked, min_cosine, path_prefix)
    else:
        try:
            report = library_duplicates(
                store.live(),
                duplicate_rules(settings),
                min_cosine=min_cosine,
                filter=SearchFilter(path_prefix=(path_prefix,)) if path_prefix else None,
            ).as_dict()
        finally:
            store.close()
    typer.echo(json.dumps(report, indent=2) if as_json else _table(report))
