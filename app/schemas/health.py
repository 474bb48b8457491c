"""What the probes and the stats route answer. The stats sections allow extra fields: a new
figure must not need a schema change to reach the client."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class HealthOut(BaseModel):
    status: str


class ReadyChecks(BaseModel):
    model_config = ConfigDict(extra="allow")
    text_model: bool
    store: bool
    snapshot: bool
    roots_file: bool = True
    """False: the data dir's library_roots.json cannot be read (not ready until repaired)."""
    library_roots: bool = True
    """False: there is no library root, so no file is served (search still works)."""


class DiskOut(BaseModel):
    """Free space on the data dir's file system against its reserve (``disk.min_free_bytes``)."""

    path: str
    free_bytes: int
    min_free_bytes: int
    low: bool


class ReadyOut(BaseModel):
    ready: bool
    checks: ReadyChecks
    reasons: list[str]
    disk: DiskOut | None = None
    warnings: list[str] = []


class TextCacheOut(BaseModel):
    size: int
    hits: int
    misses: int


class SnapshotStatsOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    count: int
    created_at: str
    age_s: float | None = None
    mmapped: bool
    freshness: dict[str, Any] | None = None


class StoreStatsOut(BaseModel):
    """The live collection, or ``error`` when the store cannot be reached."""

    model_config = ConfigDict(extra="allow")
    mode: str | None = None
    collection: str | None = None
    count: int | None = None
    error: str | None = None


class StatsOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    family: str = Field(description="the model family that answers (models.family)")
    family_title: str = Field(description="that family's name for people, e.g. LAION-CLAP")
    models: dict[str, Any]
    pipeline_version: str
    random_weights: bool
    audio_model_loaded: bool
    text_cache: TextCacheOut
    snapshot: SnapshotStatsOut | None = None
    store: StoreStatsOut | None = None
    watch: dict[str, Any] | None = None  # watched folders; None = not watching
