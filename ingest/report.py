"""What a job tells: live progress, failures and skips reports, counts, stage times, exit code
(:class:`~timbre.errors.ExitCode`; also in the README and ``timbre ingest --help``)."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from timbre.errors import ExitCode

log = logging.getLogger("timbre.ingest")


@dataclass(frozen=True)
class Failure:
    path: str
    stage: str
    error_type: str
    message: str


class JsonLinesLog:
    """Rows as JSON lines, flushed one by one so a killed job keeps what it wrote; with no
    file (a dry run) they are kept in memory for the summary to list."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.count = 0
        self.rows: list[dict[str, Any]] = []
        self._handle: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # An error message may quote a name that is not UTF-8: escape it, never fail.
            self._handle = path.open("a", encoding="utf-8", errors="backslashreplace")

    def write(self, row: dict[str, Any]) -> None:
        self.count += 1
        if self._handle is None:
            self.rows.append(row)
        else:
            self._handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


class FailureLog(JsonLinesLog):
    """Files that failed: path, stage, error type, message."""

    def __init__(self, path: Path | None) -> None:
        super().__init__(path)
        self.by_type: Counter[str] = Counter()

    def add(self, failure: Failure) -> None:
        self.by_type[failure.error_type] += 1
        self.write(asdict(failure))


class SkipLog(JsonLinesLog):
    """Entries discovery passed over: path, reason, detail (``ingest.discover.SKIP_REASONS``)."""

    def __init__(self, path: Path | None) -> None:
        super().__init__(path)
        self.by_reason: Counter[str] = Counter()

    def add(self, path: str, reason: str, detail: str) -> None:
        self.by_reason[reason] += 1
        self.write({"path": path, "reason": reason, "detail": detail})


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
    kept_unreadable_paths: int = 0
    skipped: int = 0
    unreadable: int = 0
    rehashed_changed: int = 0
    rederived: int = 0  # points whose path facts (pack, genre, ...) were derived anew
    audio_s: float = 0.0


def summary(
    counts: Counts,
    clock: StageClock,
    failures: FailureLog,
    skipped: SkipLog,
    *,
    wall_s: float,
    extra: dict[str, Any],
) -> dict[str, Any]:
    data = asdict(counts)
    data["audio_s"] = round(counts.audio_s, 2)
    return {
        "counts": data,
        "failures": _log_summary(failures, "by_type", dict(failures.by_type)),
        "skipped": _log_summary(skipped, "by_reason", dict(sorted(skipped.by_reason.items()))),
        "stage_seconds": {k: round(v, 3) for k, v in clock.seconds.items()},
        "wall_s": round(wall_s, 3),
        "throughput": {
            "files_per_s": round(counts.indexed / wall_s, 3) if wall_s else 0.0,
            "audio_s_per_s": round(counts.audio_s / wall_s, 3) if wall_s else 0.0,
        },
        **extra,
    }


def _log_summary(log: JsonLinesLog, key: str, by: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "count": log.count,
        key: by,
        "report": str(log.path) if log.path else None,
    }
    if log.path is None:
        out["entries"] = log.rows  # nothing was written: list them here
    return out


def exit_code(counts: Counts, targeted: bool = False) -> ExitCode:
    """PARTIAL when a file failed or was unreadable, or no audio was found (fine for a
    ``targeted`` watcher batch: deletions read none); else OK."""
    found_none = not counts.discovered and not targeted
    return ExitCode.PARTIAL if counts.failed or counts.unreadable or found_none else ExitCode.OK


class Progress:
    """Counts files and audio-seconds embedded, and shows rate and ETA: a bar when
    ``interactive`` (default: stderr is a terminal), else a log line every ``interval_s``."""

    def __init__(
        self, total_files: int, *, interactive: bool | None = None, interval_s: float = 10.0
    ) -> None:
        self.total = total_files
        self.done = 0
        self.failed = 0
        self.audio_s = 0.0
        self.interval_s = interval_s
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self._start = time.monotonic()
        self._last_line = self._start
        self._bar: Any = None  # rich.progress.Progress, imported only on a terminal
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.interactive:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(
                TextColumn("embedding"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                transient=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("embedding", total=self.total, rate="")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
        else:
            self._line(final=True)

    def rates(self) -> tuple[float, float, float | None]:
        """Files/s, audio-seconds/s and the estimated seconds left (None until known)."""
        elapsed = max(1e-9, time.monotonic() - self._start)
        fps = self.done / elapsed
        eta = max(0.0, self.total - self.done - self.failed) / fps if fps > 0 else None
        return fps, self.audio_s / elapsed, eta

    def advance(self, files: int = 0, audio_s: float = 0.0, failed: int = 0) -> None:
        """Count ``files`` embedded (with ``audio_s`` seconds of audio) and ``failed`` files."""
        self.done += files
        self.failed += failed
        self.audio_s += audio_s
        fps, aps, _ = self.rates()
        if self._bar is not None and self._task is not None:
            self._bar.update(
                self._task,
                completed=self.done + self.failed,
                rate=f"{fps:.1f} files/s, {aps:.0f} audio-s/s",
            )
        elif time.monotonic() - self._last_line >= self.interval_s:
            self._line()

    def _line(self, final: bool = False) -> None:
        self._last_line = time.monotonic()
        fps, aps, eta = self.rates()
        eta_text = f"{eta:.0f} s" if eta is not None else "?"
        log.info(
            "%s %d/%d files embedded, %d failed, %.2f files/s, %.1f audio-s/s, ETA %s",
            "done:" if final else "progress:",
            self.done,
            self.total,
            self.failed,
            fps,
            aps,
            "0 s" if final else eta_text,
        )
