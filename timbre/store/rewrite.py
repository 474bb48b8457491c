"""Rewrite stored payloads across a whole collection, one page at a time.

``timbre relabel`` (:mod:`timbre.labels.labeller`) and ``timbre reanalyse``
(:mod:`ingest.reanalyse`) both scroll every point, work out new values for a few fields and
write back only what changed, one batched payload update per page; the loop is here once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from timbre.store.interface import Collection, Record

Updates = Mapping[str, Mapping[str, Any]]
"""Point id -> the payload fields to merge into it."""


@dataclass(frozen=True)
class Rewritten:
    """What a rewrite went through.

    Attributes:
        points: points read.
        changed: points whose payload was (or, in a dry run, would have been) rewritten.
    """

    points: int
    changed: int


def pages(
    store: Collection, *, fields: Sequence[str], batch_size: int, with_vectors: bool = False
) -> Iterator[list[Record]]:
    """Every point of ``store`` with payload ``fields``, ``batch_size`` points a page."""
    page: list[Record] = []
    records = store.scroll(fields=list(fields), with_vectors=with_vectors, batch_size=batch_size)
    for record in records:
        page.append(record)
        if len(page) >= batch_size:
            yield page
            page = []
    if page:
        yield page


def rewrite_payloads(
    store: Collection,
    revise: Callable[[list[Record]], Updates],
    *,
    fields: Sequence[str],
    batch_size: int,
    with_vectors: bool = False,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Rewritten:
    """Give every point of ``store`` the fields ``revise`` works out for it.

    Args:
        store: the collection to rewrite.
        revise: given one page of records, the fields to merge into those that change (a
            point left out keeps its payload).
        fields: the payload fields ``revise`` reads.
        batch_size: points per page, and so per payload update.
        with_vectors: read the stored vectors too.
        dry_run: call ``revise`` on every page, write nothing.
        progress: called with the number of points read after each page.
    """
    points = changed = 0
    for page in pages(store, fields=fields, batch_size=batch_size, with_vectors=with_vectors):
        updates = revise(page)
        if updates and not dry_run:
            store.set_payloads(updates)
        points += len(page)
        changed += len(updates)
        if progress is not None:
            progress(points)
    return Rewritten(points, changed)
