"""Re-label a whole collection from its stored vectors: no audio is read, nothing re-embedded.

Scroll pages of vectors (with the few payload fields the rules read), score them against the
label vectors in one matrix product per page, and write back only the points whose labels
changed, one batched payload update per page. Vectors are never written.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from timbre.labels.labeller import Labeller
from timbre.store import Record, VectorStore

_READ = (
    "instrument",
    "instrument_source",
    "category",
    "category_score",
    "auto_tags",
    "auto_tag_scores",
    "labels_version",
)


@dataclass
class RelabelReport:
    """What a relabel did.

    Attributes:
        points: points scored.
        changed: points whose label fields were rewritten.
        with_category: points that have a category now.
        with_auto_tags: points with at least one auto tag now.
        categories: category -> points.
        best_scores: quantiles (0, 10, 50, 90, 100 %) of each point's best category cosine,
            to calibrate ``labels.category_min_cosine`` on a real library.
        margins: the same quantiles of best minus runner-up (``category_min_margin``).
        labels_version: the version written.
        seconds: wall time.
        dry_run: nothing was written.
    """

    points: int = 0
    changed: int = 0
    with_category: int = 0
    with_auto_tags: int = 0
    categories: dict[str, int] = field(default_factory=dict)
    best_scores: dict[str, float] = field(default_factory=dict)
    margins: dict[str, float] = field(default_factory=dict)
    labels_version: str = ""
    seconds: float = 0.0
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def relabel(
    store: VectorStore,
    labeller: Labeller,
    *,
    batch_size: int,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> RelabelReport:
    """Label every point of the live collection anew from its stored vector.

    Args:
        store: the live collection.
        labeller: the vocabulary, its vectors and the rules.
        batch_size: points per scroll page and per payload update.
        dry_run: compute and report, write nothing.
        progress: called with the number of points done after each page.
    """
    started = time.perf_counter()
    report = RelabelReport(labels_version=labeller.version, dry_run=dry_run)
    categories: Counter[str] = Counter()
    best: list[float] = []
    margins: list[float] = []

    def revise(page: list[Record]) -> dict[str, dict[str, Any]]:
        vectors = np.stack([np.asarray(r.vector, dtype=np.float32) for r in page])
        updates: dict[str, dict[str, Any]] = {}
        for record, labels in zip(page, labeller.label(vectors), strict=True):
            fields = labeller.fields(labels, record.payload)
            if any(record.payload.get(k) != v for k, v in fields.items()):
                updates[record.id] = fields
            best.append(labels.best_score)
            margins.append(labels.margin)
            if labels.category:
                categories[labels.category] += 1
            report.with_auto_tags += bool(labels.auto_tags)
        return updates

    done = store.live().rewrite_payloads(
        revise,
        fields=_READ,
        batch_size=batch_size,
        with_vectors=True,
        dry_run=dry_run,
        progress=progress,
    )
    report.points, report.changed = done.points, done.changed
    if not dry_run:
        store.live().write_labels_version(labeller.version)
    report.with_category = sum(categories.values())
    report.categories = dict(categories.most_common())
    report.best_scores = _quantiles(best)
    report.margins = _quantiles(margins)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    q = np.quantile(np.asarray(values), [0.0, 0.1, 0.5, 0.9, 1.0])
    names = ("min", "p10", "p50", "p90", "max")
    return {k: round(float(v), 4) for k, v in zip(names, q, strict=True)}
