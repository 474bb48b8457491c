"""Request and response bodies of the HTTP API (the OpenAPI schema at /docs), one module per
concern; everything is importable from here."""

from app.problems import Problem
from app.schemas.admin import IngestIn, IngestJobOut
from app.schemas.filters import FilterIn, RangeIn
from app.schemas.health import HealthOut, ReadyOut, StatsOut
from app.schemas.library import (
    DuplicateGroupOut,
    DuplicateMemberOut,
    DuplicatesOut,
    FacetsOut,
    FacetValueOut,
)
from app.schemas.search import (
    AudioSearchIn,
    AudioUploadIn,
    BatchItemIn,
    BatchOut,
    BatchResultOut,
    BatchSearchIn,
    EmptySlotOut,
    HitOut,
    HybridSearchIn,
    HybridUploadIn,
    Paging,
    SearchOut,
    TextSearchIn,
)

__all__ = [
    "AudioSearchIn",
    "AudioUploadIn",
    "BatchItemIn",
    "BatchOut",
    "BatchResultOut",
    "BatchSearchIn",
    "DuplicateGroupOut",
    "DuplicateMemberOut",
    "DuplicatesOut",
    "EmptySlotOut",
    "FacetValueOut",
    "FacetsOut",
    "FilterIn",
    "HealthOut",
    "HitOut",
    "HybridSearchIn",
    "HybridUploadIn",
    "IngestIn",
    "IngestJobOut",
    "Paging",
    "Problem",
    "RangeIn",
    "ReadyOut",
    "SearchOut",
    "StatsOut",
    "TextSearchIn",
]
