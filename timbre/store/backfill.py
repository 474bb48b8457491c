"""Bringing an older collection's derived payload fields up to
:data:`~timbre.store.payload.DERIVED_VERSION` in place, from the payloads it already stores
(nothing is re-embedded). A one-off migration the store runs when it opens a collection
(:mod:`timbre.store.lifecycle`), kept apart from the everyday reads and writes of
:class:`~timbre.store.collection.Collection`, which it goes through.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from timbre.store.backend import mark_write
from timbre.store.payload import DERIVED_VERSION, NORMALISED_FIELDS, with_derived

if TYPE_CHECKING:
    from timbre.store.collection import Collection

log = logging.getLogger(__name__)

_BACKFILL_READ = ("path", "paths", *NORMALISED_FIELDS)


def backfill_derived(collection: Collection) -> int:
    """Derive the fields ``collection`` lacks (``derived_version`` below
    :data:`~timbre.store.payload.DERIVED_VERSION`) from its stored payloads, in place.

    Nothing is re-embedded. Safe to interrupt: the version is recorded last and
    re-deriving is idempotent. Returns how many points were rewritten (0 when current).
    """
    # Derived fields are written on the backend directly: Collection.set_payloads refuses them.
    with collection._use() as backend:
        if int(backend.read_meta().get("derived_version") or 1) >= DERIVED_VERSION:
            return 0
    started = time.perf_counter()
    done = 0
    for page in collection.scroll_pages(fields=list(_BACKFILL_READ)):
        updates = []
        for record in page:
            derived = with_derived(record.payload)
            updates.append(
                (record.id, {k: v for k, v in derived.items() if k not in _BACKFILL_READ})
            )
        with collection._use() as backend:
            mark_write(backend)
            backend.set_payloads(updates)
        done += len(page)
    with collection._use() as backend:
        backend.write_meta({"derived_version": DERIVED_VERSION})
    log.info(
        "collection %s: derived fields of %d points brought to version %d in %.1f s",
        collection.name,
        done,
        DERIVED_VERSION,
        time.perf_counter() - started,
    )
    return done
