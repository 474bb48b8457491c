"""One SearchService: a query becomes a vector, the vector goes to the right engine, hits come back.

Routing: a query without a filter is answered by the FAISS exact snapshot (same ids and
scores as Qdrant, without a round trip); a filtered query by Qdrant with its payload indexes.
When Qdrant is unreachable, unfiltered queries keep answering from the snapshot and filtered
ones fail with :class:`UnavailableError`. A newly published snapshot is picked up by
:class:`SnapshotHolder` without a restart and swapped in with one reference assignment, so no
request ever sees a half-loaded one.

Query vectors: text through the CLaMP3 text tower (recent ones cached), audio through MERT and
the audio tower (loaded on first need), an indexed item's stored vector by id, and hybrids
``normalise(alpha * text + (1 - alpha) * audio)``.
"""

from timbre.search.holders import Lazy, SnapshotHolder, StoreHandle
from timbre.search.service import SearchService
from timbre.search.types import AudioRef, BatchQuery, SearchResult, ServiceLimits

__all__ = [
    "AudioRef",
    "BatchQuery",
    "Lazy",
    "SearchResult",
    "SearchService",
    "ServiceLimits",
    "SnapshotHolder",
    "StoreHandle",
]
