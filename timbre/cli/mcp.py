"""``timbre mcp``: the MCP tools over stdio, for desktop assistants that start Timbre themselves.

Per call: while a ``timbre serve`` has announced itself (``service.json``) the tools go
through its HTTP API; otherwise this process opens the library itself. It holds the embedded
store on a :class:`~timbre.store.lock.Lease`, only for what the snapshot cannot answer, and
lets it go between calls when another process asks (which waits at most
``mcp.store_yield_s``), when a service appears, or after ``mcp.store_idle_s`` idle. Without a
service, a result's playable URL is a ``file://`` URL.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from timbre.cli.app import app
from timbre.errors import StoreLockedError, TimbreError

if TYPE_CHECKING:
    from mcp.server import ServerRequestContext
    from mcp.shared.message import SessionMessage

    from app.mcp.backends import Backend, HttpBackend, LocalBackend
    from timbre.settings import Settings
    from timbre.store import VectorStore
    from timbre.store.lock import Lease

log = logging.getLogger("timbre.mcp")


class StdioBackends:
    """The backend of each stdio call: a running service over HTTP, else this process."""

    def __init__(self, settings: Settings) -> None:
        from timbre.store import embedded_dir
        from timbre.store.edge import OWNER_FILE
        from timbre.store.lock import Lease

        self.settings = settings
        self._lock = threading.Lock()
        self._local: LocalBackend | None = None
        self._remote: HttpBackend | None = None
        self._busy = 0  # calls answering locally right now
        self._last_call_s = time.monotonic()
        # A server store is shared by design: only the embedded one is leased.
        self._lease: Lease | None = (
            Lease(
                embedded_dir(settings.data_dir) / OWNER_FILE,
                within_s=settings.mcp.store_yield_s,
            )
            if settings.qdrant.url is None
            else None
        )
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="store-lease", daemon=True)

    @contextmanager
    def backend_for(self, ctx: ServerRequestContext[Any] | None = None) -> Iterator[Backend]:
        """The backend of one call, held until the call is answered."""
        from timbre.cli.owner import read_service_file

        announced = read_service_file(self.settings)
        if announced is not None:
            with self._lock:
                self._release_store()
                remote = self._remote_for(str(announced["url"]))
            yield remote
            return
        with self._lock:
            local = self._open_local()
            self._busy += 1
        try:
            local.service.library.snapshots.refresh()  # one published since the last call
            yield local
        finally:
            with self._lock:
                self._busy -= 1
                self._last_call_s = time.monotonic()
                if self._lease is not None and self._lease.wanted():
                    self._release_store()  # at once: someone has been waiting for this call

    def start(self) -> None:
        """Watch the lease, and load the text model when this process will answer."""
        from timbre.cli.owner import read_service_file

        self._watcher.start()
        if read_service_file(self.settings) is not None:
            return
        try:
            with self._lock:
                local = self._open_local()
            local.service.library.text.get()
        except TimbreError as exc:  # the first tool call reports it to the client
            log.error("%s", exc)

    def _watch(self) -> None:
        """Let the store go between calls when asked, when a service appears, or when idle."""
        from timbre.cli.owner import read_service_file

        mcp = self.settings.mcp
        while not self._stop.wait(mcp.store_poll_s):
            with self._lock:
                if (
                    self._busy
                    or self._local is None
                    or not self._local.service.library.store.connected
                ):
                    continue
                if (
                    time.monotonic() - self._last_call_s >= mcp.store_idle_s
                    or (self._lease is not None and self._lease.wanted())
                    or read_service_file(self.settings) is not None
                ):
                    self._release_store()

    def _remote_for(self, url: str) -> HttpBackend:
        from app.mcp.backends import HttpBackend

        if self._remote is None or self._remote.url != url:
            if self._remote is not None:
                self._remote.close()
            key = self.settings.api.api_key
            self._remote = HttpBackend(
                url,
                api_key=key.get_secret_value() if key is not None else None,
                timeout_s=self.settings.mcp.service_timeout_s,
            )
        return self._remote

    def _open_local(self) -> LocalBackend:
        if self._local is None:
            from app.mcp.backends import LocalBackend, file_urls
            from timbre.cli.wiring import build_service
            from timbre.collections_db import Collections

            service = build_service(self.settings, store_opener=self._open_store)
            collections = Collections.in_data_dir(self.settings.data_dir)
            self._local = LocalBackend(service, self.settings.api, collections, file_urls)
        return self._local

    def _open_store(self) -> VectorStore:
        """Open the store on the lease (called by the service's store handle on first need)."""
        from timbre.store import open_store

        assert self._local is not None  # the handle is the local service's own
        if self._lease is not None:
            if self._lease.wanted():
                raise StoreLockedError(
                    "another process is waiting for the embedded store, and goes first"
                )
            self._lease.announce()  # before the lock: a process refused meanwhile waits
        return open_store(self.settings, self._local.service.library.info)

    def _release_store(self) -> None:
        # Only between calls: the store is let go while no local call is using it.
        if (
            self._local is not None
            and self._busy == 0
            and self._local.service.library.store.connected
        ):
            log.info("letting the embedded store go (asked for, idle, or a service owns it)")
            self._local.service.library.store.close()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            if self._local is not None:
                self._local.service.library.store.close()
            if self._remote is not None:
                self._remote.close()
            if self._lease is not None:
                self._lease.withdraw()


class _AnswerUnparseable:
    """The stdio read stream, answering each line that is no JSON-RPC message itself (the SDK
    only logs it, leaving the client to time out) with -32700 or -32600 and id null."""

    def __init__(self, inner: Any, write: Any) -> None:
        self._inner = inner
        self._write = write

    @property
    def last_context(self) -> Any:  # the SDK reads each message's sender context here
        return getattr(self._inner, "last_context", None)

    def __aiter__(self) -> _AnswerUnparseable:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        while True:
            item: SessionMessage | Exception = await self._inner.__anext__()
            if not isinstance(item, Exception):
                return item
            await self._write.send(_error_message(item))

    async def receive(self) -> SessionMessage | Exception:
        return await self.__anext__()

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> _AnswerUnparseable:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _error_message(exc: Exception) -> SessionMessage:
    import mcp_types
    from mcp.shared.message import SessionMessage
    from pydantic import ValidationError

    errors = exc.errors() if isinstance(exc, ValidationError) else []
    if errors and errors[0].get("type") == "json_invalid":
        code, text = mcp_types.PARSE_ERROR, f"Parse error: {errors[0].get('msg', exc)}"
    else:
        code, text = mcp_types.INVALID_REQUEST, "Invalid request: not a JSON-RPC 2.0 message"
    error = mcp_types.ErrorData(code=code, message=text)
    return SessionMessage(mcp_types.JSONRPCError(jsonrpc="2.0", id=None, error=error))


@app.command("mcp")
def mcp_command() -> None:
    """Serve the MCP tools over stdio, for desktop assistants (beside a service or alone)."""
    import anyio
    from mcp.server.stdio import stdio_server

    from app.mcp.server import build_server
    from timbre.cli.data_dir import require_index
    from timbre.cli.owner import read_service_file
    from timbre.settings import load_settings

    settings = load_settings()
    if read_service_file(settings) is None:
        require_index(settings)  # a service, when one runs, answers from its own store
    backends = StdioBackends(settings)
    server = build_server(backends.backend_for)

    async def serve() -> None:
        async with stdio_server() as (read, write):
            answered = _AnswerUnparseable(read, write)
            await server.run(answered, write, server.create_initialization_options())

    # The models and the store load beside the protocol loop: a client's initialize and
    # tools/list are answered at once, and the first search waits for what it needs.
    threading.Thread(target=backends.start, name="load-local", daemon=True).start()
    try:
        anyio.run(serve)
    finally:
        backends.close()
