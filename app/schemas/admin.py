"""Ingest jobs as the API starts and reports them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StrictBool, model_validator

from app.schemas.filters import NOT_A_BOOL, ServerPath

ShardNumber = Annotated[int, Field(ge=0), NOT_A_BOOL]


class IngestIn(BaseModel):
    """One ingest job's request: ``timbre ingest``'s options (handed as they are to a running
    service), the body of ``POST /v1/ingest`` and a watcher's batch. Fields are named as the
    job's options and ``ingest`` settings; null = the service's setting."""

    model_config = ConfigDict(extra="forbid")
    paths: list[ServerPath] = Field(
        min_length=1,
        description="library folders inside the library roots (stored path text form: "
        "a byte that is not UTF-8 as \\xNN, a backslash doubled)",
    )
    prune: bool = Field(default=False, strict=True)
    dry_run: bool = Field(default=False, strict=True)
    profile: Literal["parallel", "sequential"] | None = None
    snapshot: bool | None = Field(default=None, strict=True)
    rehash: bool = Field(
        default=False, strict=True, description="read every file again, whatever size+mtime say"
    )
    workers: Annotated[int, Field(ge=0, le=64), NOT_A_BOOL] | None = Field(
        default=None, description="decoding worker processes"
    )
    batch_files: Annotated[int, Field(ge=1, le=4096), NOT_A_BOOL] | None = Field(
        default=None,
        validation_alias=AliasChoices("batch_files", "batch_size"),
        description="files embedded per batch (batch_size, its old name, is accepted)",
    )
    shard: tuple[ShardNumber, ShardNumber] | None = Field(
        default=None, description="[I, N]: index only shard I of N of the library (by content hash)"
    )

    changed: list[ServerPath] | None = Field(
        default=None,
        max_length=100_000,
        description="read only these files or folders below paths (a watcher's batch); "
        "null = walk every path",
    )
    gone: list[ServerPath] = Field(
        default=[],
        max_length=100_000,
        description="files or folders below paths that were removed: their stored paths are "
        "dropped once the disk confirms they are gone (never when unreadable or unmounted)",
    )

    @model_validator(mode="after")
    def _shard_in_range(self) -> IngestIn:
        if self.shard is not None and not (
            self.shard[1] >= 1 and 0 <= self.shard[0] < self.shard[1]
        ):
            raise ValueError("shard must be [I, N] with 0 <= I < N")
        return self


def outside_paths(path: str, paths: list[str]) -> str | None:
    """Why a ``changed`` or ``gone`` path may not be taken (it must lie below ``paths``)."""
    if "/../" in f"{path}/":
        return f"changed and gone paths must not climb with '..': {path!r}"
    if not any(path == r.rstrip("/") or path.startswith(r.rstrip("/") + "/") for r in paths):
        return f"changed and gone paths must lie below paths: {path!r}"
    return None


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


class RelabelIn(BaseModel):
    """``POST /v1/relabel``: label every sample anew from its stored vector."""

    model_config = ConfigDict(extra="forbid")

    dry_run: StrictBool = Field(default=False, description="score and report; write nothing")
    snapshot: StrictBool = Field(
        default=True, description="export a FAISS snapshot afterwards when labels changed"
    )
