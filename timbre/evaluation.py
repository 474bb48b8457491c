"""How well a family's vectors fit a library's own labels: the figures of ``timbre eval``.

Labels are the instruments ingest read from names (never from the sound, which would grade a
family on its own answers) or a ``path,label`` CSV. Per family: text -> audio R@1, R@10 and mAP
(one query per category word), audio -> audio P@10, and near-duplicate groups; also per
category beside what chance scores (averages hide a family blind to FX).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from timbre.errors import ConfigError
from timbre.search.duplicates import UnionFind

TOP_K = 10


@dataclass(frozen=True)
class CategoryScores:
    """One category's figures (its query's R@1, R@10 and average precision, its sounds' P@10)
    and what a random ranking scores on a category of its size."""

    sounds: int
    text_r1: float
    text_r10: float
    text_ap: float
    audio_p10: float
    chance_r10: float
    chance_p10: float


@dataclass(frozen=True)
class Scores:
    """One family's figures on one labelled library."""

    sounds: int
    labelled: int
    categories: int
    text_r1: float
    text_r10: float
    text_map: float
    audio_p10: float
    duplicate_groups: int
    per_category: Mapping[str, CategoryScores]

    def as_dict(self) -> dict[str, Any]:
        out = {k: _rounded(v) for k, v in vars(self).items() if k != "per_category"}
        out["per_category"] = {
            name: {k: _rounded(v) for k, v in vars(c).items()}
            for name, c in self.per_category.items()
        }
        return out


def _rounded(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def labels_from_names(payloads: Sequence[Mapping[str, Any]]) -> list[str | None]:
    """The instrument read from each sound's names, or None."""
    return [
        str(p["instrument"])
        if p.get("instrument") and p.get("instrument_source") == "name"
        else None
        for p in payloads
    ]


def labels_from_csv(path: Path, payloads: Sequence[Mapping[str, Any]]) -> list[str | None]:
    """Labels from a ``path,label`` CSV (a header row is allowed); paths as indexed."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = [r for r in csv.reader(handle) if len(r) >= 2 and r[0].strip()]
    except OSError as exc:
        raise ConfigError(f"cannot read the labels file {path}: {exc.strerror}") from exc
    table = {r[0].strip(): r[1].strip().lower() for r in rows if r[1].strip()}
    out: list[str | None] = []
    for p in payloads:
        paths = [p.get("path"), *(p.get("paths") or [])]
        out.append(next((table[x] for x in paths if x in table), None))
    if not any(out):
        raise ConfigError(f"{path} labels none of the indexed sounds (first column: the path)")
    return out


def score(
    vectors: np.ndarray,
    labels: Sequence[str | None],
    query_vectors: Mapping[str, np.ndarray],
    durations: Sequence[float | None],
    *,
    min_cosine: float,
    duration_tolerance_s: float,
    duration_tolerance_ratio: float,
) -> Scores:
    """The figures of one family (``vectors`` L2-normalised, one row per sound)."""
    known = [i for i, label in enumerate(labels) if label is not None]
    lab = np.array([labels[i] for i in known], dtype=object)
    names = sorted({str(x) for x in lab if x in query_vectors})
    sub = vectors[known]
    precision = _precision_at(sub, lab)
    k = min(TOP_K, len(known))
    per_category: dict[str, CategoryScores] = {}
    for name in names:
        order = np.argsort(-(sub @ query_vectors[name]), kind="stable")
        hits = lab[order] == name
        ranks = np.flatnonzero(hits) + 1
        size = len(ranks)
        per_category[name] = CategoryScores(
            sounds=size,
            text_r1=float(hits[:1].any()),
            text_r10=float(hits[:TOP_K].any()),
            text_ap=float(np.mean(np.arange(1, size + 1) / ranks)),
            audio_p10=float(precision[lab == name].mean()) if len(precision) else 0.0,
            # a random ranking of the labelled sounds misses the category in its first k
            # with probability C(N - size, k) / C(N, k); a random neighbour shares its label
            # with probability (size - 1) / (N - 1)
            chance_r10=1.0 - math.comb(len(known) - size, k) / math.comb(len(known), k),
            chance_p10=(size - 1) / (len(known) - 1) if len(known) > 1 else 0.0,
        )
    n = max(len(names), 1)
    return Scores(
        sounds=len(vectors),
        labelled=len(known),
        categories=len(names),
        text_r1=sum(c.text_r1 for c in per_category.values()) / n,
        text_r10=sum(c.text_r10 for c in per_category.values()) / n,
        text_map=sum(c.text_ap for c in per_category.values()) / n,
        audio_p10=float(precision.mean()) if len(precision) else 0.0,
        duplicate_groups=duplicate_groups(
            vectors, durations, min_cosine, duration_tolerance_s, duration_tolerance_ratio
        ),
        per_category=per_category,
    )


def _precision_at(vectors: np.ndarray, labels: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """For each sound, the share of its ``k`` nearest other sounds with its label (none
    when fewer than two sounds are labelled)."""
    if len(vectors) < 2:
        return np.zeros(0)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    k = min(k, len(vectors) - 1)
    nearest = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.asarray(np.mean(labels[nearest] == labels[:, None], axis=1), dtype=np.float64)


def duplicate_groups(
    vectors: np.ndarray,
    durations: Sequence[float | None],
    min_cosine: float,
    tolerance_s: float,
    tolerance_ratio: float,
) -> int:
    """How many groups of two or more sounds are near-duplicates of each other."""
    groups = UnionFind()
    for start in range(0, len(vectors), 1024):
        block = vectors[start : start + 1024] @ vectors.T
        for a, b in zip(*np.nonzero(block >= min_cosine), strict=True):
            i, j = start + int(a), int(b)
            if i >= j:
                continue
            if _durations_differ(durations[i], durations[j], tolerance_s, tolerance_ratio):
                continue
            groups.union(i, j)
    return len(groups.components())


def _durations_differ(a: float | None, b: float | None, tol_s: float, ratio: float) -> bool:
    if a is None or b is None:
        return False  # unknown durations do not keep two sounds apart
    return abs(a - b) > max(tol_s, ratio * max(a, b))


def chance(labels: Sequence[str | None]) -> dict[str, float]:
    """What a random ranking scores on these labels (R@1 and P@10 = a category's share)."""
    known = [x for x in labels if x is not None]
    if not known:
        return {"text_r1": 0.0, "audio_p10": 0.0}
    counts = {name: known.count(name) for name in set(known)}
    total = len(known)
    return {
        "text_r1": round(float(np.mean([c / total for c in counts.values()])), 4),
        "audio_p10": round(sum(c * (c - 1) / (total - 1) for c in counts.values()) / total, 4)
        if total > 1
        else 0.0,
    }
