"""A SearchService without models over a real store and its snapshot: for tests of what
needs no model (routing query vectors, steering by example ids)."""

from __future__ import annotations

from pathlib import Path

from tests.support.store_factory import model_info
from timbre.search import Lazy, Library, SearchService, ServiceLimits, SnapshotHolder, StoreHandle
from timbre.search.duplicates import DuplicateRules
from timbre.search.routing import RoutingPolicy
from timbre.store import VectorStore, snapshots_dir
from timbre.store.snapshot import ScanOptions


def _no_model() -> object:
    raise AssertionError("this test must not need a model")


def modelless_service(
    store: VectorStore, data_dir: Path, policy: RoutingPolicy | None
) -> SearchService:
    """A service over ``store`` and the current snapshot under ``data_dir`` that fails any
    test asking it for a model."""
    holder = SnapshotHolder(
        snapshots_dir(data_dir),
        model_info(),
        mmap_min_bytes=0,
        verify_checksums=True,
        scan=ScanOptions(quantised_min_vectors=0, threads=2),
    )
    holder.refresh()
    limits = ServiceLimits(
        library_roots=(),
        max_upload_bytes=1,
        max_upload_duration_s=1,
        max_duration_s=1,
        max_file_bytes=1,
        text_cache_size=0,
        snapshot_keep=2,
        facet_default_limit=20,
        facet_max_limit=500,
        duplicate_rules=DuplicateRules(
            min_cosine=0.998,
            duration_tolerance_s=0.1,
            duration_tolerance_ratio=0.05,
            neighbours=16,
            batch=256,
        ),
    )
    library = Library(
        info=model_info(),
        text=Lazy("text", _no_model),
        audio=Lazy("audio", _no_model),
        store=StoreHandle(lambda: store),
        snapshots=holder,
        limits=limits,
    )
    return SearchService(library, routing=policy)
