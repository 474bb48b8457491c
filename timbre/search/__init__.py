"""Search over an indexed library: the resources a process holds of it (:mod:`.library`), the
query service (:mod:`.service`) and the services beside it (browse, collections, media)."""

from timbre.search.holders import Lazy, SnapshotHolder, StoreHandle
from timbre.search.library import Library, ServiceLimits
from timbre.search.palette import BatchQuery
from timbre.search.service import AudioRef, SearchResult, SearchService

__all__ = [
    "AudioRef",
    "BatchQuery",
    "Lazy",
    "Library",
    "SearchResult",
    "SearchService",
    "ServiceLimits",
    "SnapshotHolder",
    "StoreHandle",
]
