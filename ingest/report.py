"""What a job tells when it ends: a failures report, counts, per-stage times, an exit code.

Exit codes (also in the README):
    0  every file found is indexed;
    1  the job finished, but some files failed (each is in the failures report);
    2  the job could not run (bad settings, models, store or roots).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

EXIT_OK, EXIT_PARTIAL, EXIT_FAILED = 0, 1, 2


@dataclass(frozen=True)
class Failure:
    path: str
    stage: str
    error_type: str
    message: str


class FailureLog:
    """Failures as JSON lines, flushed one by one so a killed job keeps what it wrote."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.count = 0
        self.by_type: Counter[str] = Counter()
        self._handle: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = path.open("a", encoding="utf-8")

    def add(self, failure: Failure) -> None:
        self.count += 1
        self.by_type[failure.error_type] += 1
        if self._handle is not None:
            self._handle.write(json.dumps(asdict(failure), ensure_ascii=False) + "\n")
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


@dataclass
class StageClock:
    """Wall-clock seconds spent in each stage of the job."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


@dataclass
class Counts:
    discovered: int = 0
    other_shards: int = 0
    already_indexed: int = 0
    paths_added: int = 0
    to_embed: int = 0
    indexed: int = 0
    failed: int = 0
    features_cached: int = 0
    pruned_paths: int = 0
    deleted_points: int = 0
    audio_s: float = 0.0


def summary(
    counts: Counts, clock: StageClock, failures: FailureLog, wall_s: float, extra: dict[str, Any]
) -> dict[str, Any]:
    data = asdict(counts)
    data["audio_s"] = round(counts.audio_s, 2)
    return {
        "counts": data,
        "failures": {
            "count": failures.count,
            "by_type": dict(failures.by_type),
            "report": str(failures.path) if failures.path else None,
        },
        "stage_seconds": {k: round(v, 3) for k, v in clock.seconds.items()},
        "wall_s": round(wall_s, 3),
        "throughput": {
            "files_per_s": round(counts.indexed / wall_s, 3) if wall_s else 0.0,
            "audio_s_per_s": round(counts.audio_s / wall_s, 3) if wall_s else 0.0,
        },
        **extra,
    }


def exit_code(counts: Counts) -> int:
    return EXIT_PARTIAL if counts.failed else EXIT_OK
