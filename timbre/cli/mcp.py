"""``timbre mcp``: the MCP tools over stdio, for desktop assistants that start Timbre themselves.

Which backend answers is decided per call: while a ``timbre serve`` has announced itself in the
data dir (``service.json``, as ``timbre ingest`` finds it), the tools go through its HTTP API,
since it owns the embedded store; otherwise this process opens the library itself. It never
fights over the store: it opens it only for what the FAISS snapshot cannot answer (filtered
queries), and lets it go once idle for ``mcp.store_idle_s`` or as soon as a service appears, so
a ``timbre ingest`` or ``timbre serve`` started later can take it.

Without a service there is no HTTP server to stream audio from, so the playable URL of a
result is a ``file://`` URL of the sample where it was indexed (the assistant runs on the same
machine); beside a service it is the service's own ``/v1/items/{id}/audio`` URL.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from timbre.cli.app import app, fail
from timbre.errors import TimbreError

if TYPE_CHECKING:
    from mcp.server import ServerRequestContext

    from app.mcp.backends import Backend, HttpBackend, LocalBackend
    from timbre.settings import Settings

log = logging.getLogger("timbre.mcp")


class StdioBackends:
    """The backend of each stdio call: a running service over HTTP, else this process.

    Args:
        settings: the process's settings (data dir, models, API limits, ``mcp`` section).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._local: LocalBackend | None = None
        self._remote: HttpBackend | None = None
        self._busy = 0  # calls answering locally right now
        self._idle: threading.Timer | None = None

    @contextmanager
    def backend_for(self, ctx: ServerRequestContext[Any] | None = None) -> Iterator[Backend]:
        """The backend of one call, held until the call is answered."""
        from timbre.cli.wiring import read_service_file

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
            if self._idle is not None:
                self._idle.cancel()
        try:
            local.service.snapshots.refresh()  # one published since the last call
            yield local
        finally:
            with self._lock:
                self._busy -= 1
                if self._busy == 0:
                    self._idle = threading.Timer(self.settings.mcp.store_idle_s, self._release)
                    self._idle.daemon = True
                    self._idle.start()

    def start(self) -> None:
        """Load the text model when this process will answer (no service running)."""
        from timbre.cli.wiring import read_service_file

        if read_service_file(self.settings) is not None:
            return
        try:
            with self._lock:
                local = self._open_local()
            local.service.text.get()
        except TimbreError as exc:  # the first tool call reports it to the client
            log.error("%s", exc)

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

            service = build_service(self.settings)
            collections = Collections.in_data_dir(self.settings.data_dir)
            self._local = LocalBackend(service, self.settings.api, collections, file_urls)
        return self._local

    def _release(self) -> None:
        with self._lock:
            if self._busy == 0:
                self._release_store()

    def _release_store(self) -> None:
        # Only between calls: the store is let go while no local call is using it.
        if self._local is not None and self._busy == 0 and self._local.service.store.connected:
            log.info("letting the embedded store go (idle, or a service owns it now)")
            self._local.service.store.close()

    def close(self) -> None:
        with self._lock:
            if self._idle is not None:
                self._idle.cancel()
            if self._local is not None:
                self._local.service.store.close()
            if self._remote is not None:
                self._remote.close()


@app.command("mcp")
def mcp_command() -> None:
    """Serve the MCP tools over stdio, for desktop assistants (beside a service or alone)."""
    import anyio
    from mcp.server.stdio import stdio_server

    from app.mcp.server import build_server
    from timbre.settings import load_settings

    try:
        settings = load_settings()
    except TimbreError as exc:
        raise fail(exc) from exc
    backends = StdioBackends(settings)
    server = build_server(backends.backend_for)

    async def serve() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    # The models and the store load beside the protocol loop: a client's initialize and
    # tools/list are answered at once, and the first search waits for what it needs.
    threading.Thread(target=backends.start, name="load-local", daemon=True).start()
    try:
        anyio.run(serve)
    except TimbreError as exc:
        raise fail(exc) from exc
    finally:
        backends.close()
