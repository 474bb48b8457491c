"""Ingest jobs as the API starts and reports them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.filters import ServerPath


class IngestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paths: list[ServerPath] = Field(
        min_length=1, description="library folders inside the configured roots"
    )
    prune: bool = Field(default=False, strict=True)
    dry_run: bool = Field(default=False, strict=True)
    profile: Literal["parallel", "sequential"] | None = None
    snapshot: bool = Field(default=True, strict=True)


class IngestJobOut(BaseModel):
    job_id: str
    state: Literal["running", "finished", "failed"]
    paths: list[str]
    started_at: str
    finished_at: str | None = None
    progress: dict[str, Any] = {}
    failures: list[dict[str, Any]] = []
    summary: dict[str, Any] | None = None
    exit_code: int | None = None
    error: str | None = None
