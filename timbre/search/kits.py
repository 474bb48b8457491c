"""Kits: 8 or 16 pads, each filled with a distinct sample for its slot that fits the project.

The rules, in order:

- **fill**: every empty, unlocked pad gets the best text match for its slot label (one
  batched search, :meth:`SearchService.search_batch`, so a label naming an instrument the
  library holds filters on it), never a sample already on another pad. A drum slot (its
  label holds a word of :data:`~timbre.search.kit_slots.DRUM_WORDS`) looks among one-shots
  first, then anywhere. With a project context, the best *fitting* hit wins
  (:func:`timbre.fit.fit_of`); when none fits, the best by score does and the pad's note says
  so (``only_fitting`` leaves it empty).
- **swap**: a pad's sample is replaced by the one most like it (its stored vector), not on
  another pad and not swapped away from that pad before, fitting first.
- **lock**: fill and swap-all keep a locked pad; a locked pad refuses a new sample, a clear
  or a swap until unlocked (its label may change).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from timbre.errors import ConflictError, InvalidRequestError, NotFoundError
from timbre.fit import ProjectContext, fit_of
from timbre.kits_db import KitInfo, KitRecord, Kits, Pad, check_kit_name
from timbre.search.kit_slots import (
    FIRST_NOTE,
    check_slot,
    context_dict,
    context_of,
    slot_filter,
    slots_for,
)
from timbre.search.palette import BatchQuery
from timbre.search.service import AudioRef, SearchService
from timbre.store import Hit

POOL_EXTRA = 16
"""Hits asked beyond the pads already taken, so a slot still has choices after them."""
MAX_POOL = 200


@dataclass(frozen=True)
class PadView:
    """A pad as shown: its sample's payload (None: empty or no longer indexed), whether its
    sample is missing (no longer indexed, or its file is gone) and, in the reply that chose
    it, its score."""

    pad: Pad
    payload: dict[str, Any] | None
    missing: bool
    score: float | None = None

    @property
    def midi_note(self) -> int:
        return FIRST_NOTE + self.pad.index - 1


@dataclass(frozen=True)
class KitView:
    """A kit with its pads resolved; ``info`` None for a kit composed without being saved."""

    name: str | None
    size: int
    context: dict[str, Any] | None
    pads: list[PadView]
    info: KitInfo | None = None


@dataclass
class _Fill:
    """One round of choosing: the context, whether only fitting samples may go on a pad, and
    the ids no pad may take (already on a pad)."""

    context: ProjectContext | None
    only_fitting: bool
    taken: set[str]

    def choose(
        self, hits: Sequence[Hit], avoid: Collection[str] = ()
    ) -> tuple[Hit | None, str | None]:
        """The best hit not taken, fitting first; and a note when it does not fit."""
        free = [h for h in hits if h.id not in self.taken and h.id not in avoid]
        if not free:
            return None, None
        if self.context is None:
            return free[0], None
        for hit in free:
            if fit_of(self.context, hit.payload).fits:
                return hit, None
        if self.only_fitting:
            return None, "no sample for this slot fits the project (only_fitting)"
        return free[0], "no sample for this slot fits the project: the best match by sound instead"


def _file_exists(payload: dict[str, Any]) -> bool:
    paths = payload.get("paths") or [payload.get("path")]
    return any(isinstance(p, str) and "\x00" not in p and Path(p).is_file() for p in paths)


class KitsService:
    """Kits over a search service; ``db`` stores them (None: kits can be composed, not kept)."""

    def __init__(self, db: Kits | None, search: SearchService) -> None:
        self.db = db
        self.search = search
        self.library = search.library

    def _store(self) -> Kits:
        if self.db is None:
            raise InvalidRequestError("kits cannot be saved here: leave out the name")
        return self.db

    # -- views ------------------------------------------------------------------------------

    def _view(
        self,
        name: str | None,
        size: int,
        context: dict[str, Any] | None,
        pads: Sequence[Pad],
        *,
        info: KitInfo | None = None,
        scores: dict[str, float] | None = None,
    ) -> KitView:
        payloads = self.library.payloads([p.id for p in pads if p.id is not None])
        views = []
        for pad in pads:
            payload = payloads.get(pad.id) if pad.id is not None else None
            missing = pad.id is not None and (payload is None or not _file_exists(payload))
            score = (scores or {}).get(pad.id) if pad.id is not None else None
            views.append(PadView(pad, payload, missing, score))
        return KitView(name, size, context, views, info)

    def _record_view(self, record: KitRecord, scores: dict[str, float] | None = None) -> KitView:
        info = record.info
        return self._view(
            info.name, info.size, record.context, record.pads, info=info, scores=scores
        )

    def get(self, name: str) -> KitView:
        return self._record_view(self._store().get(name))

    def list_all(self) -> list[KitInfo]:
        return self._store().list_all()

    def delete(self, name: str) -> None:
        self._store().delete(name)

    # -- making kits ------------------------------------------------------------------------

    def compose(
        self,
        size: int,
        slots: Sequence[str] | None = None,
        context: ProjectContext | None = None,
        *,
        only_fitting: bool = False,
        fill: bool = True,
    ) -> tuple[list[Pad], dict[str, Any] | None, dict[str, float]]:
        """The pads of a new kit (filled when ``fill``), its context as stored, and the
        scores of the samples chosen."""
        labels = slots_for(size, slots)
        pads = [Pad(i, label) for i, label in enumerate(labels, 1)]
        stored = context_dict(context, only_fitting)
        scores: dict[str, float] = {}
        if fill:
            pads = self._fill(pads, _Fill(context, only_fitting, set()), scores)
        return pads, stored, scores

    def preview(
        self,
        size: int,
        slots: Sequence[str] | None = None,
        context: ProjectContext | None = None,
        *,
        only_fitting: bool = False,
    ) -> KitView:
        """A filled kit, not saved."""
        pads, stored, scores = self.compose(size, slots, context, only_fitting=only_fitting)
        return self._view(None, size, stored, pads, scores=scores)

    def create(
        self,
        name: str,
        size: int,
        slots: Sequence[str] | None = None,
        context: ProjectContext | None = None,
        *,
        only_fitting: bool = False,
        fill: bool = True,
    ) -> KitView:
        """A new kit, saved (ConflictError when the name is taken: checked before searching)."""
        db = self._store()
        name = check_kit_name(name)
        try:
            db.get(name)
        except NotFoundError:
            pass
        else:
            raise ConflictError(f"a kit named {name!r} already exists")
        pads, stored, scores = self.compose(
            size, slots, context, only_fitting=only_fitting, fill=fill
        )
        return self._record_view(db.create(name, size, stored, pads), scores)

    def _round(self, record: KitRecord) -> _Fill:
        stored = record.context or {}
        taken = {p.id for p in record.pads if p.id is not None}
        return _Fill(context_of(stored), bool(stored.get("only_fitting")), taken)

    def _fill(self, pads: list[Pad], round_: _Fill, scores: dict[str, float]) -> list[Pad]:
        """``pads`` with every empty, unlocked one filled (see the module's rules)."""
        round_.taken |= {p.id for p in pads if p.id is not None}
        out = {p.index: p for p in pads}
        todo = [p for p in pads if p.id is None and not p.locked]
        pool = min(MAX_POOL, len(pads) + len(round_.taken) + POOL_EXTRA)
        for first in (True, False):
            if not todo:
                break
            queries = [
                BatchQuery(p.slot, pool, slot_filter(p.slot) if first else None, slot=p.slot)
                for p in todo
            ]
            results = self.search.search_batch(queries)
            left = []
            for pad, result in zip(todo, results, strict=True):
                hit, note = round_.choose(result.hits)
                if hit is None:
                    if first and slot_filter(pad.slot) is not None:
                        left.append(pad)  # no one-shot left: look at everything
                    else:
                        out[pad.index] = replace(pad, note=note or "no sample left for this slot")
                    continue
                if not first:
                    note = "; ".join(filter(None, ["no one-shot left: any kind", note]))
                round_.taken.add(hit.id)
                scores[hit.id] = hit.score or 0.0
                out[pad.index] = replace(
                    pad, id=hit.id, path_hint=hit.payload.get("path"), note=note, swapped=()
                )
            todo = left
        return [out[p.index] for p in pads]

    def set_context(
        self, name: str, context: ProjectContext | None, *, only_fitting: bool = False
    ) -> KitView:
        """Move a kit to another project (None: none). The pads keep their samples; what
        changes is how each fits, what fill and swap prefer, and the matched export."""
        db = self._store()
        return self._record_view(db.set_context(name, context_dict(context, only_fitting)))

    def fill(self, name: str) -> KitView:
        """Fill a kit's empty, unlocked pads."""
        db = self._store()
        record = db.get(name)
        scores: dict[str, float] = {}
        pads = self._fill(record.pads, self._round(record), scores)
        changed = [p for p, old in zip(pads, record.pads, strict=True) if p != old]
        return self._record_view(db.save_pads(record.info.name, changed), scores)

    # -- one pad ----------------------------------------------------------------------------

    def _pad(self, record: KitRecord, index: int) -> Pad:
        if not 1 <= index <= record.info.size:
            raise NotFoundError(
                f"kit {record.info.name!r} has pads 1 to {record.info.size}, not {index}"
            )
        return record.pads[index - 1]

    def _edit(self, name: str, index: int, change: Callable[[KitRecord, Pad], Pad]) -> KitView:
        db = self._store()
        record = db.get(name)
        pad = change(record, self._pad(record, index))
        return self._record_view(db.save_pads(record.info.name, [pad]))

    @staticmethod
    def _unlocked(pad: Pad, what: str) -> None:
        if pad.locked:
            raise ConflictError(f"pad {pad.index} is locked: unlock it to {what}")

    def set_pad(
        self, name: str, index: int, *, item_id: str | None = None, slot: str | None = None
    ) -> KitView:
        """Put an indexed sample on a pad (one on another pad of the kit: ConflictError),
        and/or change its slot label."""
        if item_id is None and slot is None:
            raise InvalidRequestError("give an id, a slot, or both")
        label = check_slot(slot) if slot is not None else None

        def change(record: KitRecord, pad: Pad) -> Pad:
            if label is not None:
                pad = replace(pad, slot=label)
            if item_id is None or item_id == pad.id:
                return pad
            self._unlocked(pad, "put another sample on it")
            payload = self.library.item(item_id)  # NotFoundError: not indexed
            for other in record.pads:
                if other.id == item_id and other.index != pad.index:
                    raise ConflictError(
                        f"that sample is already on pad {other.index} ({other.slot}): a kit "
                        "never holds a sample twice"
                    )
            return replace(pad, id=item_id, path_hint=payload.get("path"), note=None, swapped=())

        return self._edit(name, index, change)

    def clear_pad(self, name: str, index: int) -> KitView:
        def change(record: KitRecord, pad: Pad) -> Pad:
            self._unlocked(pad, "clear it")
            return replace(pad, id=None, path_hint=None, note=None, swapped=())

        return self._edit(name, index, change)

    def lock_pad(self, name: str, index: int, locked: bool) -> KitView:
        return self._edit(name, index, lambda record, pad: replace(pad, locked=locked))

    # -- swapping ---------------------------------------------------------------------------

    def _neighbour(self, pad: Pad, round_: _Fill, scores: dict[str, float]) -> Pad:
        """``pad`` with its sample swapped for the one most like it (see the module's rules);
        an empty pad, or one whose sample left the index, is filled from its label."""
        if pad.id is None or not self.library.payloads([pad.id]):
            emptied = replace(pad, id=None, path_hint=None)
            return self._fill([emptied], round_, scores)[0]
        vector = self.search.audio_vector(AudioRef(id=pad.id))
        round_.taken.discard(pad.id)
        avoid = {pad.id}
        pool = min(MAX_POOL, len(round_.taken) + len(pad.swapped) + POOL_EXTRA)
        for own_filter, history in ((slot_filter(pad.slot), True), (None, True), (None, False)):
            if own_filter is None and history and slot_filter(pad.slot) is None:
                continue  # the first search had no filter: the second would repeat it
            exclude = frozenset(round_.taken | avoid | (set(pad.swapped) if history else set()))
            routed = self.search.route(vector, top_k=pool, filter=own_filter, exclude=exclude)
            hit, note = round_.choose(routed.hits, avoid)
            if hit is None:
                continue
            swapped = (*pad.swapped, pad.id) if history else (pad.id,)
            if not history:
                note = "; ".join(filter(None, ["every neighbour was tried: starting over", note]))
            round_.taken.add(hit.id)
            scores[hit.id] = hit.score or 0.0
            return replace(
                pad, id=hit.id, path_hint=hit.payload.get("path"), note=note, swapped=swapped
            )
        round_.taken.add(pad.id)
        return replace(pad, note="no other sample to swap in: kept")

    def swap(self, name: str, index: int) -> KitView:
        """Swap one pad's sample for its nearest neighbour that fits (a locked pad:
        ConflictError)."""
        db = self._store()
        record = db.get(name)
        pad = self._pad(record, index)
        self._unlocked(pad, "swap it")
        scores: dict[str, float] = {}
        new = self._neighbour(pad, self._round(record), scores)
        return self._record_view(db.save_pads(record.info.name, [new]), scores)

    def swap_all(self, name: str) -> KitView:
        """Swap every unlocked pad (filling the empty ones); locked pads stay."""
        db = self._store()
        record = db.get(name)
        round_ = self._round(record)
        scores: dict[str, float] = {}
        pads = [p if p.locked else self._neighbour(p, round_, scores) for p in record.pads]
        changed = [p for p, old in zip(pads, record.pads, strict=True) if p != old]
        return self._record_view(db.save_pads(record.info.name, changed), scores)
