"""``timbre serve``: the HTTP API and the page."""

from __future__ import annotations

from typing import Annotated

import typer

from timbre.cli.app import app


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (api.host).")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="TCP port, 1-65535 (api.port).")
    ] = None,
) -> None:
    """Run the search service: JSON API, OpenAPI at /docs, and the search page at /."""
    import logging

    import uvicorn

    from timbre.cli.app import DETAIL_LOGGERS
    from timbre.cli.owner import claim_data_dir, remove_service_file, write_service_file
    from timbre.settings import load_settings

    for name in DETAIL_LOGGERS:  # a service's log keeps its bookkeeping
        logging.getLogger(name).setLevel(logging.NOTSET)
    settings = load_settings()
    if host:  # the interface given here is also a host name the service answers to
        settings = settings.model_copy(
            update={"api": settings.api.model_copy(update={"host": host})}
        )
    # First, before models or files: a second service on this data dir must not start,
    # and must leave the owner's service file alone.
    lock = claim_data_dir(settings)
    from timbre.cli.wiring import build_app, build_service  # only once the dir is ours

    service = build_service(settings)
    # The text tower loads in the background (ONNX Runtime's session build runs off the
    # GIL) while the web stack imports; readiness waits for it.
    service.library.text.start()
    application = build_app(settings, service)
    host = host or settings.api.host
    port = port or settings.api.port
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    write_service_file(settings, f"http://{shown}:{port}")
    from app.server import install_repeat_filter, server_config

    config = server_config(application, settings.api, host=host, port=port)
    if settings.api.log_repeat_window_s > 0:
        install_repeat_filter(settings.api.log_repeat_window_s)  # after uvicorn's log set-up
    try:
        uvicorn.Server(config).run()
    finally:
        remove_service_file(settings)
        lock.release()
