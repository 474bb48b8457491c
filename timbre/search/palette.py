"""Palettes: many text queries in one call (an assistant filling the slots of a track idea).

Rules that make a shared context safe for every slot: a context's BPM range never empties a
one-shot slot (one-shots are also searched without it, merged by score: one query vector); a
slot's own BPM range applies to everything; a slot named after an instrument the library holds
(``kick``) filters on it unless a filter sets one; an empty slot names the filter that emptied
it (or says that earlier ``distinct`` slots took every match). A project (one tempo, one key:
:mod:`timbre.search.fitting`) is no filter: every slot prefers the samples that fit it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from timbre.search.fitting import FitQuery
from timbre.search.library import Library
from timbre.store import Hit, SearchFilter
from timbre.store.filters import KEYWORD_FIELDS, conjoin

ONE_SHOT = "one_shot"
_ONE_SHOTS = SearchFilter(kind=(ONE_SHOT,))
_TEMPO = {"bpm_min": None, "bpm_max": None, "bpm_min_exclusive": False, "bpm_max_exclusive": False}
_DURATION = {
    "duration_min_s": None,
    "duration_max_s": None,
    "duration_min_exclusive": False,
    "duration_max_exclusive": False,
}


@dataclass(frozen=True)
class BatchQuery:
    """One slot of a batch search: ``filter`` is its own, ``context`` shared by every slot,
    ``slot`` its label (``kick``), which may name the instrument wanted, ``avoid`` words to
    steer away from."""

    query: str
    top_k: int
    filter: SearchFilter | None = None
    offset: int = 0
    context: SearchFilter | None = None
    slot: str | None = None
    avoid: tuple[str, ...] = ()  # words to steer away from (:mod:`timbre.search.steer`)


@dataclass(frozen=True)
class Plan:
    """How one slot is searched: ``filters`` are searched and their hits merged by score;
    ``parts`` name each filter's source for the empty-slot explanation."""

    filters: tuple[SearchFilter | None, ...]
    parts: tuple[tuple[str, SearchFilter | None], ...]
    notes: tuple[str, ...]


def has_tempo(f: SearchFilter | None) -> bool:
    return f is not None and (f.bpm_min is not None or f.bpm_max is not None)


def _kinds(*filters: SearchFilter | None) -> set[str] | None:
    """The kinds every filter allows (None = any)."""
    allowed: set[str] | None = None
    for f in filters:
        if f is not None and f.kind is not None:
            allowed = set(f.kind) if allowed is None else allowed & set(f.kind)
    return allowed


def _range(f: SearchFilter, low: str, high: str) -> str:
    lo, hi = getattr(f, low), getattr(f, high)
    return f"{'' if lo is None else f'{lo:g}'}-{'' if hi is None else f'{hi:g}'}"


def conditions(f: SearchFilter | None) -> list[tuple[str, str, SearchFilter | None]]:
    """Each condition of ``f`` as (field, value as written, ``f`` without that condition)."""
    if f is None:
        return []
    out: list[tuple[str, str, SearchFilter | None]] = []
    for field in (*KEYWORD_FIELDS, "path_prefix"):
        values = getattr(f, field)
        if values is not None:
            out.append((field, ", ".join(values), f.model_copy(update={field: None})))
    if has_tempo(f):
        out.append(("bpm", _range(f, "bpm_min", "bpm_max"), f.model_copy(update=_TEMPO)))
    if f.duration_min_s is not None or f.duration_max_s is not None:
        value = _range(f, "duration_min_s", "duration_max_s")
        out.append(("duration_s", value, f.model_copy(update=_DURATION)))
    return out


def _slot_instrument(library: Library, q: BatchQuery) -> SearchFilter | None:
    """The instrument filter the slot's label names, when the library holds that instrument
    and nothing else filters on instrument."""
    if not q.slot or any(f is not None and f.instrument for f in (q.filter, q.context)):
        return None
    label = q.slot.strip().lower()
    for name in dict.fromkeys((label, label.removesuffix("s"), label.removesuffix("es"))):
        if not name:
            continue
        wanted = SearchFilter(instrument=(name,))
        if library.matching(wanted):  # None (nobody can count) or 0: do not guess
            return wanted
    return None


def _searches(
    context: SearchFilter | None, own: SearchFilter | None, derived: SearchFilter | None
) -> tuple[SearchFilter | None, ...]:
    """The filters a slot is searched with: the whole conjunction, and the one-shots a
    context's tempo spares (alone when the slot takes one-shots only)."""
    whole = conjoin(context, own, derived)
    kinds = _kinds(context, own)
    if not has_tempo(context) or has_tempo(own) or (kinds is not None and ONE_SHOT not in kinds):
        return (whole,)
    assert context is not None  # has_tempo
    spared = conjoin(context.model_copy(update=_TEMPO), own, derived, _ONE_SHOTS)
    return (spared,) if kinds == {ONE_SHOT} else (whole, spared)


def plan(library: Library, q: BatchQuery) -> Plan:
    """The searches of one slot (see the module's rules)."""
    notes: list[str] = []
    derived = _slot_instrument(library, q)
    if derived is not None and derived.instrument:
        notes.append(f"instrument {derived.instrument[0]} (from the slot name {q.slot!r})")
    filters = _searches(q.context, q.filter, derived)
    context = q.context
    if context is not None and filters != (conjoin(context, q.filter, derived),):
        bpm = _range(context, "bpm_min", "bpm_max")
        notes.append(f"context bpm {bpm} applies to loops; one-shots have no tempo and pass it")
        if len(filters) == 1:  # one-shots only: the range never applied, so never blame it
            context = context.model_copy(update=_TEMPO)
    parts = (("context", context), ("filter", q.filter), ("slot", derived))
    return Plan(filters, parts, tuple(notes))


def _count(library: Library, filters: tuple[SearchFilter | None, ...]) -> int | None:
    """Samples passing any of a slot's searches (the two overlap in one-shots with a BPM)."""
    counts = [library.matching(f) for f in filters]
    if len(filters) == 2:
        counts.append(-(library.matching(conjoin(filters[0], _ONE_SHOTS)) or 0))
    return None if any(c is None for c in counts) else sum(c or 0 for c in counts)


def project_note(fit: FitQuery) -> str:
    """The note a slot fitted to a project carries."""
    project = fit.project
    parts = [f"bpm {project.bpm:g}" if project.bpm is not None else "", project.key or ""]
    order = "fitting samples first" if fit.sort == "fit" else "by score"
    return (
        f"project {', '.join(p for p in parts if p)}: {order}, each hit says how it fits "
        "(a project, not a filter)"
    )


def merge(lists: Sequence[list[Hit]], offset: int, top_k: int) -> list[Hit]:
    best: dict[str, Hit] = {}
    for hits in lists:
        for hit in hits:
            if hit.id not in best or (hit.score or 0.0) > (best[hit.id].score or 0.0):
                best[hit.id] = hit
    ranked = sorted(best.values(), key=lambda h: -(h.score or 0.0))
    return ranked[offset : offset + top_k]


def why_empty(library: Library, chosen: Plan) -> dict[str, Any]:
    """Why a slot has no hits: how many samples pass its filters, whether earlier slots took
    them, and for each condition how many would pass without it."""
    matches = _count(library, chosen.filters)
    without = []
    for name, part in chosen.parts:
        for field, value, rest in conditions(part):
            # the slot searched again without this one condition, by the same rules
            loosened = {**dict(chosen.parts), name: rest}
            found = _count(
                library, _searches(loosened["context"], loosened["filter"], loosened["slot"])
            )
            without.append({"filter": f"{name}.{field}", "value": value, "matches": found})
    if matches is None:
        reason = "no hits, and the library could not be counted to say why"
    elif matches:
        reason = f"the {matches} matching samples went to earlier slots (distinct)"
    else:
        helps = [w for w in without if w["matches"]]
        reason = "no sample matches the filters" + (
            "; without "
            + "; without ".join(f"{w['filter']} ({w['value']}): {w['matches']}" for w in helps)
            if helps
            else ""
        )
    return {"matches": matches, "without": without, "reason": reason}
