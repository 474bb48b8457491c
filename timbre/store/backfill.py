"""In-place migration of derived payload fields, from the stored payloads alone.

A collection written before a derivation existed (``derived_version`` in its metadata below
:data:`~timbre.store.payload.DERIVED_VERSION`, e.g. without the normalised companions that
case-insensitive filters match) gets them here: scroll the payloads (no vectors), derive,
write them back in batches, then record the version. Nothing is re-embedded and no schema
bump (which would rebuild the collection from the audio) is needed. Safe to interrupt: the
version is recorded last, so the next open starts again, and re-deriving is idempotent.
"""

from __future__ import annotations

import logging
import time

from timbre.store.collection import CollectionView
from timbre.store.payload import DERIVED_VERSION, NORMALISED_FIELDS, with_derived

log = logging.getLogger(__name__)

_READ = ("path", "paths", *NORMALISED_FIELDS)


def backfill_derived(view: CollectionView) -> int:
    """Derive the missing fields of every point of an older collection; returns how many.

    Returns 0 at once when the collection already carries the current derivation.
    """
    recorded = int(view.backend.read_meta().get("derived_version") or 1)
    if recorded >= DERIVED_VERSION:
        return 0
    started = time.perf_counter()
    done = 0
    for page in view.scroll_pages(fields=list(_READ)):
        updates = []
        for record in page:
            derived = with_derived(record.payload)
            updates.append((record.id, {k: v for k, v in derived.items() if k not in _READ}))
        view.mark_write()
        view.backend.set_payloads(updates)
        done += len(page)
    view.backend.write_meta({"derived_version": DERIVED_VERSION})
    log.info(
        "collection %s: derived fields of %d points brought to version %d in %.1f s",
        view.name,
        done,
        DERIVED_VERSION,
        time.perf_counter() - started,
    )
    return done
