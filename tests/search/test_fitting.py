"""Ranking by fit (:mod:`timbre.search.fitting`): the pool rule, the stable grouping of
``sort="fit"`` and ``only_fitting`` (paging over the pool: tests/api/test_fit_context.py)."""

from __future__ import annotations

from typing import Any

from timbre.fit import ProjectContext
from timbre.search.fitting import (
    POOL_CAP,
    POOL_FACTOR,
    POOL_MIN,
    FitQuery,
    pool_size,
    rank_by_fit,
)

PROJECT = ProjectContext.of(bpm=124, key="Am")
# (name, payload) in score order: b and d do not fit (tempo, key), the rest do
ITEMS: list[tuple[str, dict[str, Any]]] = [
    ("a", {"kind": "loop", "bpm": 122, "key": "Am"}),
    ("b", {"kind": "loop", "bpm": 100, "key": "Am"}),
    ("c", {"kind": "one_shot", "bpm": None, "key": None}),
    ("d", {"kind": "one_shot", "key": "F#"}),
    ("e", {"kind": "loop", "bpm": 62, "key": "C"}),
]


def names(items: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [name for name, _ in items]


def test_score_order_is_kept_unless_asked_otherwise() -> None:
    ranked = rank_by_fit(ITEMS, FitQuery(PROJECT), lambda item: item[1])
    assert names(ranked) == ["a", "b", "c", "d", "e"]
    assert not FitQuery(PROJECT).reranks


def test_sort_by_fit_puts_fitting_first_each_group_in_its_order() -> None:
    query = FitQuery(PROJECT, sort="fit")
    assert query.reranks
    assert names(rank_by_fit(ITEMS, query, lambda item: item[1])) == ["a", "c", "e", "b", "d"]


def test_only_fitting_drops_the_rest_in_either_order() -> None:
    for sort in ("score", "fit"):
        query = FitQuery(PROJECT, sort=sort, only_fitting=True)  # type: ignore[arg-type]
        assert query.reranks
        assert names(rank_by_fit(ITEMS, query, lambda item: item[1])) == ["a", "c", "e"]


def test_describe_echoes_the_context_with_its_tolerance() -> None:
    query = FitQuery(ProjectContext.of(bpm=90, tempo_tolerance_pct=4), sort="fit")
    assert query.describe() == {
        "bpm": 90,
        "key": None,
        "tolerance_pct": 4,
        "sort": "fit",
        "only_fitting": False,
    }


def test_the_pool_is_one_for_the_first_pages_and_grows_past_them() -> None:
    first = {pool_size(offset, 20) for offset in range(0, POOL_MIN // POOL_FACTOR - 20 + 1, 20)}
    assert first == {POOL_MIN}  # every page within the first 200 results ranks the same pool
    assert pool_size(300, 100) == POOL_FACTOR * 400
    assert pool_size(4000, 200) == POOL_CAP  # capped...
    assert pool_size(10_000, 200) == 10_200  # ...but never short of the page's end
