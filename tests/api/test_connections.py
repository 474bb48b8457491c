"""Slow, idle and too many connections, against a real uvicorn server on 127.0.0.1.

The server runs the protocol and limits ``timbre serve`` uses (:mod:`app.server`) around a
small ASGI app, with the time limits shortened so that every loop here is bounded by seconds.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from app.server import (
    FD_RESERVE,
    RepeatFilter,
    concurrency_limit,
    raise_nofile_limit,
    server_config,
)
from timbre.settings import ApiSettings, load_settings

HEADER_S, READ_S, KEEP_ALIVE_S = 0.6, 0.6, 1


def _api(**changes: Any) -> ApiSettings:
    return load_settings().api.model_copy(
        update={
            "header_timeout_s": HEADER_S,
            "read_timeout_s": READ_S,
            "keep_alive_s": KEEP_ALIVE_S,
            **changes,
        }
    )


class _App:
    """Answers at once, except ``/wait``, which holds its request until released."""

    def __init__(self) -> None:
        self.release = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/wait":
            while not self.release.is_set():
                await asyncio.sleep(0.02)
        text = f"ok {len(body)}".encode()
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(text)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": text})


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[tuple[int, _App]]:
    app = _App()
    changes = getattr(request, "param", {})
    config = server_config(app, _api(**changes), host="127.0.0.1", port=0)
    server = uvicorn.Server(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield port, app
    finally:
        app.release.set()
        server.should_exit = True
        thread.join(10)
        sock.close()


def _connect(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn.settimeout(5)
    return conn


def _response(conn: socket.socket) -> bytes:
    """One whole response (this app's are short, with a content-length)."""
    data = b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        head, _, body = data.partition(b"\r\n\r\n")
        length = [int(v) for k, v in _headers(head) if k == b"content-length"]
        if length and len(body) >= length[0]:
            return data
        chunk = conn.recv(4096)
        if not chunk:
            return data
        data += chunk
    return data


def _headers(head: bytes) -> list[tuple[bytes, bytes]]:
    pairs = [line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line]
    return [(k.strip().lower(), v.strip()) for k, v in pairs]


def _read_until_closed(conn: socket.socket, within_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes; and how long that took."""
    started = time.monotonic()
    data = b""
    conn.settimeout(within_s)
    while chunk := conn.recv(4096):
        data += chunk
    return data, time.monotonic() - started


def test_a_normal_request_is_served(served: tuple[int, _App]) -> None:
    port, _ = served
    with _connect(port) as conn:
        conn.sendall(b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\n\r\nabc")
        assert b"ok 3" in _response(conn)


def test_a_head_trickled_line_by_line_is_cut_off(served: tuple[int, _App]) -> None:
    port, _ = served
    with _connect(port) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nhost: a\r\n")
        started = time.monotonic()
        closed = False
        for i in range(40):  # a header line every 0.1 s: 4 s unless the server ends it
            try:
                conn.sendall(f"x-slow-{i}: {i}\r\n".encode())
            except OSError:
                closed = True
                break
            time.sleep(0.1)
            conn.settimeout(0.01)
            try:
                if conn.recv(4096) is not None:
                    closed = True
                    break
            except TimeoutError:
                pass
        assert closed, "the trickling connection was kept open"
        assert time.monotonic() - started < HEADER_S + 1.0


def test_the_slow_client_gets_a_408(served: tuple[int, _App]) -> None:
    port, _ = served
    with _connect(port) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nhost: a\r\n")  # and never the blank line
        data, took = _read_until_closed(conn, within_s=5)
    assert data.startswith(b"HTTP/1.1 408")
    assert HEADER_S - 0.1 < took < HEADER_S + 1.0


def test_a_stalled_body_is_cut_off(served: tuple[int, _App]) -> None:
    port, _ = served
    with _connect(port) as conn:
        conn.sendall(b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 100\r\n\r\n0123456789")
        data, took = _read_until_closed(conn, within_s=5)
    assert b"ok" not in data
    assert took < READ_S + 1.0


def test_an_idle_kept_alive_connection_is_closed(served: tuple[int, _App]) -> None:
    port, _ = served
    with _connect(port) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
        assert b"200 OK" in _response(conn)
        rest, took = _read_until_closed(conn, within_s=5)
    assert rest == b"" and took < KEEP_ALIVE_S + 1.0


def test_a_slow_next_request_on_a_kept_alive_connection_is_cut_off(
    served: tuple[int, _App],
) -> None:
    port, _ = served
    with _connect(port) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
        assert b"200 OK" in _response(conn)
        conn.sendall(b"GET / HTTP/1.1\r\n")  # resets uvicorn's keep-alive timer, not ours
        data, took = _read_until_closed(conn, within_s=5)
    assert data.startswith(b"HTTP/1.1 408") and took < HEADER_S + 1.0


@pytest.mark.parametrize("served", [{"max_concurrency": 3}], indirect=True)
def test_requests_beyond_the_concurrency_limit_get_503(served: tuple[int, _App]) -> None:
    port, app = served
    held: list[socket.socket] = []
    try:
        for _ in range(2):  # two requests in flight, on two of the three connections allowed
            held.append(_connect(port))
            held[-1].sendall(b"GET /wait HTTP/1.1\r\nhost: a\r\n\r\n")
            time.sleep(0.1)
        with _connect(port) as extra:  # the third connection: at the limit
            extra.sendall(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
            assert b" 503 " in _response(extra).split(b"\r\n")[0]
        app.release.set()
        for conn in held:
            assert b"200 OK" in _response(conn)
    finally:
        for conn in held:
            conn.close()


def test_the_soft_descriptor_limit_is_raised_and_bounds_the_connections() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1024:
        pytest.skip(f"hard open-file limit {hard}: nothing to raise towards")
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))
        assert raise_nofile_limit(1024) == 1024
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == 1024
        assert raise_nofile_limit(600) == 1024  # never lowered
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    api = _api(max_concurrency=5000)
    assert concurrency_limit(api, 1024) == 1024 - FD_RESERVE
    assert concurrency_limit(_api(max_concurrency=100), 1024) == 100


def test_a_burst_of_identical_log_lines_is_written_once_then_counted() -> None:
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    now = [0.0]
    handler = Keep()
    handler.addFilter(RepeatFilter(window_s=10, clock=lambda: now[0]))
    logger = logging.getLogger("timbre.test.repeat")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for i in range(10_000):
            try:
                raise OSError(24, "Too many open files")
            except OSError:
                logger.exception("accept failed on socket %d", i)
        logger.error("another line")
        now[0] = 10.5  # the window has passed
        try:
            raise OSError(24, "Too many open files")
        except OSError:
            logger.exception("accept failed on socket %d", -1)
    finally:
        logger.removeHandler(handler)
    assert lines[:2] == ["accept failed on socket 0", "another line"]
    assert lines[2] == "accept failed on socket -1 [9999 identical lines suppressed]"
    assert len(lines) == 3
