"""Request and response bodies of the HTTP API (the OpenAPI schema at /docs), one module per
concern; the ones used across modules are importable from here."""

from app.problems import Problem
from app.schemas.admin import IngestIn, IngestJobOut
from app.schemas.filters import FilterIn
from app.schemas.fit import FitOut, PaletteContextIn, ProjectIn
from app.schemas.health import HealthOut, ReadyOut, StatsOut
from app.schemas.library import DuplicatesOut, FacetsOut
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
    "DuplicatesOut",
    "EmptySlotOut",
    "FacetsOut",
    "FilterIn",
    "FitOut",
    "HealthOut",
    "HitOut",
    "HybridSearchIn",
    "HybridUploadIn",
    "IngestIn",
    "IngestJobOut",
    "PaletteContextIn",
    "Problem",
    "ProjectIn",
    "ReadyOut",
    "SearchOut",
    "StatsOut",
    "TextSearchIn",
]
