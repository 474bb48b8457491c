"""The end of ``timbre ingest``: a few lines for people, the full JSON summary in a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from timbre.fsutil import now_stamp

DRY_RUN_SHOWN = 20
"""Paths a dry run lists per kind of change before it says "and N more"."""


def write_summary(data_dir: Path, summary: dict[str, Any]) -> Path | None:
    """Write ``summary`` beside the job's other reports; None if the folder is not writable."""
    path = data_dir / "reports" / f"ingest-{now_stamp()}-summary.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    except OSError:
        return None
    return path


def _by(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason.replace('_', ' ')} {n}" for reason, n in counts.items())


def human_summary(summary: dict[str, Any], written: Path | None) -> str:
    """A short account of a job: what was indexed, what failed or was passed over, and where
    the details are."""
    if summary.get("state") == "failed":
        return f"the job failed: {summary.get('error')}"
    counts = summary.get("counts", {})
    lines = []
    seconds = summary.get("wall_s")
    took = f" in {seconds:.1f} s" if isinstance(seconds, int | float) else ""
    if summary.get("dry_run"):
        would = summary.get("would", {})
        lines.append(
            f"dry run: {counts.get('discovered', 0)} audio files found, "
            f"{counts.get('to_embed', 0)} would be embedded{took}; nothing was written"
        )
        for kind, paths in would.items():
            if not isinstance(paths, list) or not paths:
                continue
            lines.append(f"  would {kind.replace('_', ' ')} ({len(paths)}):")
            lines.extend(f"    {p}" for p in paths[:DRY_RUN_SHOWN])
            if len(paths) > DRY_RUN_SHOWN:
                lines.append(f"    ... and {len(paths) - DRY_RUN_SHOWN} more (--json lists all)")
    else:
        lines.append(
            f"indexed {counts.get('indexed', 0)} new of {counts.get('discovered', 0)} audio "
            f"files found ({counts.get('already_indexed', 0)} already indexed){took}"
        )
    failures = summary.get("failures") or {}
    if failures.get("count"):
        lines.append(
            f"{failures['count']} failed ({_by(failures.get('by_type', {}))}): "
            f"{failures.get('report') or 'listed in the JSON summary'}"
        )
    skipped = summary.get("skipped") or {}
    if skipped.get("count"):
        lines.append(
            f"{skipped['count']} passed over ({_by(skipped.get('by_reason', {}))}): "
            f"{skipped.get('report') or 'listed in the JSON summary'}"
        )
    pruned = counts.get("pruned_paths", 0)
    if pruned:
        lines.append(f"{pruned} paths of deleted or moved files forgotten")
    snapshot = summary.get("snapshot")
    if isinstance(snapshot, dict) and snapshot.get("name"):
        lines.append(f"search snapshot {snapshot['name']}: {snapshot.get('count', '?')} samples")
    if written is not None:
        lines.append(f"full summary: {written} (or run with --json)")
    return "\n".join(lines)
