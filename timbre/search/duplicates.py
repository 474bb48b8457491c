"""Near-duplicates: the same sound stored more than once under different bytes.

Exact copies share one point (ids are content hashes). Near-duplicates (re-encoded, resampled,
quieter, trimmed) are found by querying the store with every sample's vector, restricted to
agreeing durations and to ``min_cosine``. Pairs never chain: a group is split around the
sample :data:`KEEP_RULE` keeps; velocity layers (:mod:`timbre.search.layers`) are listed
apart. A report only: nothing is deleted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from timbre.errors import InvalidRequestError, StoreError, UnavailableError
from timbre.search.layers import LayerName, layer_name
from timbre.store import Collection, Hit, Record, SearchFilter
from timbre.store.payload import DISPLAY_FIELDS

LOSSLESS_FORMATS = frozenset({"wav", "wavex", "aiff", "aifc", "flac", "caf", "w64", "rf64"})
"""libsndfile container names that hold lossless audio (anything else counts as lossy)."""

KEEP_RULE = (
    "keep the lossless file (WAV, AIFF, FLAC...) over a lossy one (MP3, Ogg), then the higher "
    "sample rate, then more channels, then the longer (untrimmed) one, then the first path"
)
"""How each group's ``keep`` is chosen; stated in every report."""

_FIELDS = ("path", "paths", "duration_s", "format", "sample_rate", "channels", "pack")
_SCAN_FIELDS = ("duration_s", "path")
_SCORE_SLACK = 1e-6


@dataclass(frozen=True)
class DuplicateRules:
    """When two samples are near-duplicates (the ``duplicates`` settings)."""

    min_cosine: float
    duration_tolerance_s: float
    duration_tolerance_ratio: float
    neighbours: int
    batch: int

    def durations_agree(self, a: float, b: float) -> bool:
        """``|a - b| <= max(tolerance_s, ratio * max(a, b))``."""
        allowed = max(self.duration_tolerance_s, self.duration_tolerance_ratio * max(a, b))
        return abs(a - b) <= allowed

    def window(self, d: float) -> tuple[float, float]:
        """Every duration that can agree with ``d``, widened by a nanosecond against float
        rounding (matches are checked exactly after)."""
        tol, ratio = self.duration_tolerance_s, self.duration_tolerance_ratio
        low = max(0.0, min(d - tol, d * (1.0 - ratio)) - 1e-9)
        return low, max(d + tol, d / (1.0 - ratio)) + 1e-9


@dataclass(frozen=True)
class Member:
    """One sample of a group; ``score`` is its cosine with the member kept (1 for that one)."""

    id: str
    score: float
    path: str | None
    paths: list[str]
    duration_s: float | None
    format: str | None
    sample_rate: int | None
    channels: int | None
    pack: str | None


@dataclass(frozen=True)
class Group:
    """Samples that are one sound; ``keep`` is the id :data:`KEEP_RULE` picks."""

    keep: str
    members: list[Member]

    @property
    def min_score(self) -> float:
        return min(m.score for m in self.members)


@dataclass(frozen=True)
class LayerSet:
    """Layers or round robins of one sound in one folder, as close as duplicates; ``members``
    in path order, each ``score`` the cosine with the first."""

    folder: str
    sound: str
    members: list[Member]

    @property
    def min_score(self) -> float:
        return min(m.score for m in self.members)


@dataclass
class DuplicateReport:
    """Every group found (largest first), the layer sets set apart, and how the search went."""

    groups: list[Group] = field(default_factory=list)
    layers: list[LayerSet] = field(default_factory=list)
    points: int = 0
    seconds: float = 0.0
    rules: dict[str, Any] = field(default_factory=dict)
    keep_rule: str = KEEP_RULE

    @property
    def duplicates(self) -> int:
        """Samples that could go (group members other than the one kept)."""
        return sum(len(g.members) - 1 for g in self.groups)

    def as_dict(self) -> dict[str, Any]:
        return {
            "points": self.points,
            "groups": [
                {"keep": g.keep, "min_score": round(g.min_score, 6), **asdict(g)}
                for g in self.groups
            ],
            "duplicates": self.duplicates,
            "layers": [{**asdict(s), "min_score": round(s.min_score, 6)} for s in self.layers],
            "seconds": self.seconds,
            "rules": self.rules,
            "keep_rule": self.keep_rule,
        }


class UnionFind:
    """Connected sets of ids (any ordered, hashable ids)."""

    def __init__(self) -> None:
        self.parent: dict[Any, Any] = {}

    def find(self, x: Any) -> Any:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: Any, b: Any) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def components(self) -> list[list[Any]]:
        """The sets of two or more, each in id order."""
        out: dict[Any, list[Any]] = {}
        for point in sorted(self.parent):
            out.setdefault(self.find(point), []).append(point)
        return [ids for ids in out.values() if len(ids) > 1]


def _pages(store: Collection, size: int, base: SearchFilter | None) -> Iterator[list[Record]]:
    page: list[Record] = []
    for record in store.scroll(filter=base, fields=list(_SCAN_FIELDS), with_vectors=True):
        page.append(record)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page


def _query_filter(base: SearchFilter | None, low: float, high: float) -> SearchFilter:
    if base is None:
        return SearchFilter(duration_min_s=low, duration_max_s=high)
    lo = max(low, base.duration_min_s) if base.duration_min_s is not None else low
    hi = min(high, base.duration_max_s) if base.duration_max_s is not None else high
    return base.model_copy(update={"duration_min_s": lo, "duration_max_s": max(lo, hi)})


def neighbours(
    store: Collection,
    records: Sequence[Record],
    rules: DuplicateRules,
    *,
    base: SearchFilter | None = None,
    fields: Sequence[str] = DISPLAY_FIELDS,
) -> list[list[Hit]]:
    """For each record (with its vector and a duration), the other points under ``base``
    within ``min_cosine`` whose durations agree with its own, best first: one store batch."""
    durations = [float(r.payload["duration_s"]) for r in records]
    found = store.search_batch(
        np.stack([np.asarray(r.vector, dtype=np.float32) for r in records]),
        top_k=rules.neighbours,
        filters=[_query_filter(base, *rules.window(d)) for d in durations],
        score_threshold=rules.min_cosine,
        fields=list(fields),
    )
    return [
        [
            h
            for h in hits
            if h.id != record.id
            and isinstance(h.payload.get("duration_s"), int | float)
            and rules.durations_agree(duration, float(h.payload["duration_s"]))
        ]
        for record, duration, hits in zip(records, durations, found, strict=True)
    ]


def find_duplicates(
    store: Collection,
    rules: DuplicateRules,
    *,
    filter: SearchFilter | None = None,
    progress: Callable[[int], None] | None = None,
) -> DuplicateReport:
    """Group the near-duplicates among the points matching ``filter`` (all if None), and set
    apart the layers among them. Points without a duration are never grouped."""
    started = time.perf_counter()
    report = DuplicateReport(rules=asdict(rules))
    names: dict[str, LayerName] = {}
    pairs: set[tuple[str, str]] = set()
    for page in _pages(store, rules.batch, filter):
        report.points += len(page)
        timed = [r for r in page if isinstance(r.payload.get("duration_s"), int | float)]
        found = neighbours(store, timed, rules, base=filter, fields=_SCAN_FIELDS) if timed else []
        for record, hits in zip(timed, found, strict=True):
            for hit in hits:
                # names only of the few that pair: a library has many more points
                for paired in (record, hit):
                    if paired.id not in names:
                        names[paired.id] = layer_name(str(paired.payload.get("path") or ""))
                pairs.add((min(record.id, hit.id), max(record.id, hit.id)))
        if progress is not None:
            progress(report.points)
    candidates, layered = UnionFind(), UnionFind()
    for a, b in sorted(pairs):
        (layered if names[a].is_layer_of(names[b]) else candidates).union(a, b)
    report.groups = [
        group for ids in candidates.components() for group in _split(store, ids, rules, names)
    ]
    report.groups.sort(key=lambda g: (-len(g.members), g.members[0].path or ""))
    report.layers = [_layer_set(store, ids, names) for ids in layered.components()]
    report.layers.sort(key=lambda s: (s.folder, s.sound))
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def keep_key(payload: dict[str, Any]) -> tuple[Any, ...]:
    """Sort key of :data:`KEEP_RULE`: the smallest is kept."""
    fmt = str(payload.get("format") or "").lower()
    return (
        fmt not in LOSSLESS_FORMATS,
        -(payload.get("sample_rate") or 0),
        -(payload.get("channels") or 0),
        -(payload.get("duration_s") or 0.0),
        str(payload.get("path") or ""),
    )


def _member(record: Record, score: float) -> Member:
    return Member(
        id=record.id,
        score=round(score, 6),
        **{k: record.payload.get(k) for k in _FIELDS if k != "paths"},
        paths=list(record.payload.get("paths") or []),
    )


def _split(
    store: Collection, ids: list[str], rules: DuplicateRules, names: dict[str, LayerName]
) -> list[Group]:
    """Groups out of candidates that touch: the best by :data:`KEEP_RULE` takes every other
    within ``min_cosine`` whose duration agrees (closest first, never two layers of one
    sound), and the rest start again, so no group chains."""
    records = sorted(store.retrieve(ids, with_vectors=True), key=lambda r: keep_key(r.payload))
    vectors = np.stack([np.asarray(r.vector, dtype=np.float32) for r in records])
    left = list(range(len(records)))
    groups = []
    while left:
        keeper, rest = left[0], left[1:]
        cosines = dict(zip(rest, (vectors[rest] @ vectors[keeper]).tolist(), strict=True))
        kept_duration = float(records[keeper].payload.get("duration_s") or 0.0)
        kept_name = names.get(records[keeper].id)
        close = [
            i
            for i in rest
            # the store's float32 scores may differ from this product in the last bits
            if cosines[i] >= rules.min_cosine - _SCORE_SLACK
            and rules.durations_agree(kept_duration, float(records[i].payload["duration_s"]))
        ]
        # ties at 1.0 are common (layers, copies): the same layer of the sound goes first
        close.sort(key=lambda i: (-round(cosines[i], 6), names.get(records[i].id) != kept_name))
        chosen = [keeper]
        for i in close:
            if not any(_layers(names, records[i].id, records[j].id) for j in chosen):
                chosen.append(i)
        left = [i for i in left if i not in chosen]
        if len(chosen) > 1:
            chosen.sort()  # keep-rule order, the one kept first
            scores = [1.0 if i == keeper else cosines[i] for i in chosen]
            members = [_member(records[i], s) for i, s in zip(chosen, scores, strict=True)]
            groups.append(Group(keep=records[keeper].id, members=members))
    return groups


def _layers(names: dict[str, LayerName], a: str, b: str) -> bool:
    first, second = names.get(a), names.get(b)
    return first is not None and second is not None and first.is_layer_of(second)


def _layer_set(store: Collection, ids: list[str], names: dict[str, LayerName]) -> LayerSet:
    records = sorted(store.retrieve(ids, with_vectors=True), key=lambda r: str(r.payload["path"]))
    first = np.asarray(records[0].vector, dtype=np.float32)
    members = [
        _member(r, 1.0 if n == 0 else float(np.asarray(r.vector, dtype=np.float32) @ first))
        for n, r in enumerate(records)
    ]
    name = names[records[0].id]
    return LayerSet(folder=name.folder, sound=" ".join(name.sound), members=members)


def library_duplicates(
    store: Collection,
    rules: DuplicateRules,
    *,
    min_cosine: float | None = None,
    filter: SearchFilter | None = None,
) -> DuplicateReport:
    """:func:`find_duplicates` with an optional ``min_cosine`` override, for the front doors."""
    if min_cosine is not None:
        if not 0.0 < min_cosine <= 1.0:
            raise InvalidRequestError("min_cosine: a cosine in (0, 1]")
        rules = replace(rules, min_cosine=min_cosine)
    try:
        return find_duplicates(store, rules, filter=filter)
    except StoreError as exc:
        raise UnavailableError(f"the duplicate search needs Qdrant, which failed: {exc}") from exc
