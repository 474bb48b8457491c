"""What a service says about itself: readiness (``/readyz``) and its figures (``/v1/stats``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from timbre.diskspace import megabytes
from timbre.errors import StoreError, UnavailableError
from timbre.store.snapshot import freshness

if TYPE_CHECKING:
    from timbre.search.service import SearchService


def readiness(service: SearchService) -> dict[str, Any]:
    """Ready once the text model, the store and a snapshot are: what text queries need.

    ``library_roots`` tells whether files can be served. No roots at all is a legitimate
    search-only service (reported, still ready); a roots file that cannot be read is a fault
    of the data dir (not ready until it is repaired).
    """
    snapshot = service.snapshots.current
    roots = service.roots
    damage = service.store.damage
    checks = {
        "text_model": service.text.ready,
        "store": service.store.connected and damage is None,
        "snapshot": snapshot is not None,
        "roots_file": roots.problem is None,
    }
    reasons = []
    if not service.text.ready:
        error = service.text.error
        reasons.append(f"text model {'failed: ' + error if error else 'loading'}")
    if not service.store.connected:
        error = service.store.error
        reasons.append(f"store unreachable: {error}" if error else "store not open")
    elif damage is not None:
        reasons.append(f"store damaged: {damage}")
    if snapshot is None:
        reasons.append(service.snapshots.error or "no snapshot published yet (run an ingest)")
    if roots.problem is not None:
        reasons.append(
            f"library roots: {roots.problem}; fix or remove it (`timbre ingest` "
            "records the roots again)"
        )
    ready = all(checks.values())
    checks["library_roots"] = bool(roots.paths)
    if not roots.paths:
        reasons.append(f"{roots.why_none()}: no file is served from disk")
    out: dict[str, Any] = {"ready": ready, "checks": checks, "reasons": reasons}
    if service.disk is not None:
        # Low disk leaves the service ready: searches only read, and pulling it out of a load
        # balancer would stop them too. Writes (ingest, collections) are what it refuses.
        disk = service.disk.status()
        out["disk"] = disk
        out["warnings"] = (
            [
                f"disk space low: {megabytes(disk['free_bytes'])} free on {disk['path']}, "
                f"below the {megabytes(disk['min_free_bytes'])} reserve (disk.min_free_bytes): "
                "ingest jobs and store writes are refused until space is freed"
            ]
            if disk["low"]
            else []
        )
    return out


def stats(service: SearchService) -> dict[str, Any]:
    """Models, caches, the snapshot in use and its lag behind the live collection."""
    snapshot = service.snapshots.current
    text, audio = service.text.peek(), service.audio.peek()
    out: dict[str, Any] = {
        "family": service.info.family,  # which model family answers
        "family_title": service.info.title,
        "models": service.info.as_dict(),
        "pipeline_version": service.info.pipeline_version,
        "random_weights": service.info.random_weights,
        "audio_model_loaded": service.audio.ready,
        # The audio side loads on first need or in the background (api.preload_audio); a query
        # that needs it meanwhile waits for it.
        "audio_model": {
            "state": service.audio.state,
            "load_s": service.audio.load_s,
            "error": service.audio.error,
        },
        # The precision each loaded side runs in (fp32 unless a reduced one passed its
        # agreement check at load); None = not loaded yet.
        "precision": {
            "text": getattr(text, "running", None),
            "audio": getattr(audio, "running", None),
        },
        # What runs each side: onnxruntime (the CPU default once its export passed the
        # agreement gate) or torch; None = not loaded yet.
        "runtime": {
            "text": getattr(text, "runtime", None),
            "audio": getattr(audio, "runtime", None),
        },
        "text_cache": {
            "size": service.limits.text_cache_size,
            "hits": service.text_cache.hits,
            "misses": service.text_cache.misses,
        },
        "text_batches": {
            "max": service.text_batcher.max_batch,
            "calls": service.text_batcher.calls,
            "queries": service.text_batcher.queries,
        },
        "snapshot": None,
        "store": None,
    }
    if snapshot is not None:
        out["snapshot"] = {
            "name": snapshot.name,
            "count": len(snapshot),
            "created_at": snapshot.manifest.created_at,
            "age_s": _age_s(snapshot.manifest.created_at),
            "mmapped": snapshot.mmapped,
            "scan": snapshot.scan.kind,
        }
    try:
        store = service.store.get()
        live = store.live()
        out["store"] = {"mode": store.mode, "collection": live.name, "count": live.count()}
        if service.store.damage is not None:
            out["store"]["error"] = service.store.damage
        if snapshot is not None:
            out["snapshot"]["freshness"] = freshness(snapshot.manifest, live).as_dict()
    except (UnavailableError, StoreError) as exc:
        out["store"] = {"error": str(exc)}
    return out


def _age_s(iso: str) -> float | None:
    try:
        created = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return round((datetime.now(UTC) - created).total_seconds(), 1)
