"""The HTTP server around the app: connection time limits, a concurrency cap, descriptors, logs.

uvicorn's h11 protocol does not limit how long a request may take to *arrive*: a client sending
a header line every few seconds holds a connection and a descriptor forever. So
:class:`GuardedH11Protocol` puts deadlines on the request head and on body pauses,
``limit_concurrency`` answers 503 past a number of connections, the soft descriptor limit is
raised at start, and :class:`RepeatFilter` keeps one line of a burst of identical log records
(an "accept: too many open files" loop writes tracebacks as fast as the disk takes them).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import threading
import time
from collections.abc import Callable
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from timbre.settings import ApiSettings

log = logging.getLogger("timbre.api")

_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\nconnection: close\r\n"
    b"content-length: 16\r\n\r\nrequest timeout\n"
)
FD_RESERVE = 256
"""Descriptors kept for everything but client connections: the store's and snapshot's files,
SQLite, model files, worker pipes, log files."""


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol closing a connection whose request head is not complete
    ``header_timeout_s`` after it opened (or the last response ended), or whose body pauses
    longer than ``read_timeout_s`` (408 when no response began). :func:`guarded_protocol` sets
    the limits on a subclass."""

    header_timeout_s = 10.0
    read_timeout_s = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A silent kept-alive connection is the keep-alive timer's; the next head's deadline
        # starts with its first byte (or now, for a request already pipelined behind).
        self._disarm()
        if self.conn.their_state is not h11.IDLE:
            self._follow()

    def _follow(self) -> None:
        if self.transport.is_closing():
            self._disarm()
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._deadline is None:  # a head began: it must be complete in time
                self._arm(self.header_timeout_s)
        elif state is h11.SEND_BODY:
            self._arm(self.read_timeout_s)  # each part of a body must follow the last in time
        else:
            self._disarm()  # the request is in: the app's own time is not limited here

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.conn.our_state is h11.IDLE:  # no response begun: say why it ends
            self.transport.write(_REQUEST_TIMEOUT)
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.close()


def guarded_protocol(api: ApiSettings) -> type[GuardedH11Protocol]:
    """The protocol class with the ``api`` section's limits."""
    return type(
        "TimbreH11Protocol",
        (GuardedH11Protocol,),
        {"header_timeout_s": api.header_timeout_s, "read_timeout_s": api.read_timeout_s},
    )


def raise_nofile_limit(wanted: int) -> int:
    """Raise the soft limit on open descriptors towards ``wanted`` (never above the hard limit,
    never lowered); returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (OSError, ValueError) as exc:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, exc)
    return soft


def concurrency_limit(api: ApiSettings, nofile: int) -> int:
    """``api.max_concurrency``, lowered so that connections never use up the descriptors."""
    room = max(1, nofile - FD_RESERVE)
    if api.max_concurrency > room:
        log.warning(
            "open-file limit %d: at most %d connections at once instead of %d "
            "(api.max_concurrency); raise the limit (ulimit -n) to serve more",
            nofile,
            room,
            api.max_concurrency,
        )
    return min(api.max_concurrency, room)


class RepeatFilter(logging.Filter):
    """Lets the first of identical records through, then one per ``window_s`` with a count.
    Identical: same logger, level, message template and exception type (not arguments)."""

    def __init__(self, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window_s = window_s
        self._clock = clock
        self._seen: dict[tuple[Any, ...], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else None
        key = (record.name, record.levelno, str(record.msg), exc)
        now = self._clock()
        with self._lock:
            since, dropped = self._seen.get(key, (-float("inf"), 0))
            if now - since < self.window_s:
                self._seen[key] = (since, dropped + 1)
                return False
            self._seen[key] = (now, 0)
            if len(self._seen) > 4096:  # bounded: forget the oldest bursts
                for old in sorted(self._seen, key=lambda k: self._seen[k][0])[:2048]:
                    del self._seen[old]
        if dropped:
            record.msg = f"{record.msg} [{dropped} identical lines suppressed]"
        return True


def install_repeat_filter(window_s: float) -> RepeatFilter:
    """Put one :class:`RepeatFilter` on every handler of the root and uvicorn loggers."""
    repeat = RepeatFilter(window_s)
    for name in (None, "uvicorn", "uvicorn.error", "uvicorn.access"):
        for handler in logging.getLogger(name).handlers:
            if repeat not in handler.filters:
                handler.addFilter(repeat)
    return repeat


def server_config(app: Any, api: ApiSettings, *, host: str, port: int) -> uvicorn.Config:
    """The uvicorn configuration of ``timbre serve``: limits from ``api``, descriptors raised."""
    nofile = raise_nofile_limit(api.max_concurrency + FD_RESERVE)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        http=guarded_protocol(api),
        timeout_keep_alive=api.keep_alive_s,
        limit_concurrency=concurrency_limit(api, nofile),
    )
