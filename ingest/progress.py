"""Progress of a job: a live bar on a terminal, plain periodic log lines anywhere else."""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType
from typing import Any

log = logging.getLogger("timbre.ingest")


class Progress:
    """Counts files and audio-seconds embedded, and shows rate and ETA.

    Args:
        total_files: files that need embedding.
        interactive: draw a bar (default: when stderr is a terminal).
        interval_s: seconds between log lines when not interactive.
    """

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
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import (
                Progress as Bar,
            )

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

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)
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
