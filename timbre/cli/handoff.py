"""Commands beside a running ``timbre serve``, which owns the embedded store: they ask it.

``timbre ingest`` hands its whole request over ``POST /v1/ingest``, prints the job's progress
and ends with its summary and exit code; ``duplicates`` and ``relabel`` make one request. When
the service refuses, the message says exactly what to change.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer

from timbre.errors import ExitCode, StoreLockedError
from timbre.store.pathtext import path_from_text, path_text

if TYPE_CHECKING:
    import httpx

    from app.schemas import IngestIn
    from timbre.settings import Settings

POLL_S = 1.0
"""Seconds between two looks at the job's progress."""


def job_body(request: IngestIn) -> dict[str, Any]:
    """The ``POST /v1/ingest`` body of ``request``: its paths absolute, and options not given
    left out, so that the service's own settings apply (its device may want another batch)."""
    paths = [path_text(path_from_text(p).expanduser().resolve()) for p in request.paths]
    return {**request.model_dump(mode="json", exclude_none=True), "paths": paths}


def _refusal(url: str, response: httpx.Response, paths: Sequence[str] = ()) -> StoreLockedError:
    try:
        data = response.json()
    except ValueError:
        data = {"detail": response.text}
    detail = data.get("detail", data) if isinstance(data, dict) else data
    text = f"the service at {url} refused ({response.status_code}): {detail}"
    if response.status_code == 403 and paths:
        listed = ", ".join(f'"{p}"' for p in paths)
        text += (
            ". The service takes jobs only inside its library roots: the roots this data dir "
            "already indexes, and api.library_roots. To index a new library, add it to "
            f"api.library_roots (e.g. TIMBRE_API__LIBRARY_ROOTS='[{listed}]' or "
            "api.library_roots in the YAML named by TIMBRE_CONFIG) and restart `timbre serve`, "
            "or stop the service and run `timbre ingest` again"
        )
    elif response.status_code == 401:
        text += ". Set TIMBRE_API__API_KEY to the service's API key"
    return StoreLockedError(text)


@contextmanager
def _service(
    settings: Settings, locked: Exception, doing: str, timeout: float | None
) -> Iterator[tuple[str, httpx.Client]]:
    """A client of the service that owns the embedded store, after saying what it is asked
    (StoreLockedError when no service announced itself or it cannot be reached)."""
    import httpx

    from timbre.cli.owner import read_service_file

    service = read_service_file(settings)
    if service is None:
        raise StoreLockedError(f"{locked}; no running Timbre service announced itself")
    url = service["url"]
    typer.echo(f"the embedded store is owned by the service at {url}: {doing}", err=True)
    key = settings.api.api_key
    headers = {} if key is None else {"X-API-Key": key.get_secret_value()}
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=timeout) as client:
            yield url, client
    except httpx.HTTPError as exc:
        raise StoreLockedError(
            f"{locked}; the service at {url} could not be reached: {exc}"
        ) from exc


def ingest_through_service(
    settings: Settings, locked: Exception, request: IngestIn
) -> tuple[dict[str, Any], int]:
    """Run the job inside the service that owns the embedded store, printing its progress
    (StoreLockedError when no service took it: none announced, unreachable, or refused)."""
    body = job_body(request)
    job_id = None
    with _service(settings, locked, "handing the job to it", timeout=30) as (url, client):
        try:
            started = client.post("/v1/ingest", json=body)
            if started.status_code != 202:
                raise _refusal(url, started, body["paths"])
            job_id = started.json()["job_id"]
            state = _follow(client, job_id)
        except KeyboardInterrupt:
            if job_id is not None:
                typer.echo(
                    f"stopped following job {job_id}; it goes on inside the service "
                    f"(GET {url}/v1/ingest/{job_id})",
                    err=True,
                )
            raise
    if state["state"] == "failed":
        typer.echo(f"error: the job failed inside the service: {state.get('error')}", err=True)
        failed = {"job_id": job_id, "state": "failed", "error": state.get("error")}
        return failed, int(state.get("exit_code") or ExitCode.CRASHED)
    return state["summary"], int(state["exit_code"])


def ask_service(
    settings: Settings, locked: Exception, method: str, route: str, *, what: str, **request: Any
) -> Any:
    """One request to the service that owns the embedded store; its JSON answer. While a
    service owns the store, ``duplicates`` and ``relabel`` ask it instead of refusing
    (StoreLockedError when no service announced itself, it cannot be reached, or it refused)."""
    with _service(settings, locked, f"asking it {what}", timeout=None) as (url, client):
        response = client.request(method, route, **request)
    if response.status_code != 200:
        raise _refusal(url, response)
    try:
        return response.json()
    except ValueError:  # not JSON: something else answers on that port
        return {"detail": response.text}


def _follow(client: httpx.Client, job_id: str) -> dict[str, Any]:
    shown = None
    while True:
        state: dict[str, Any] = client.get(f"/v1/ingest/{job_id}").json()
        progress = state.get("progress") or {}
        line = (
            f"{progress.get('indexed', 0)}/{progress.get('to_embed', '?')} embedded, "
            f"{progress.get('failed', 0)} failed"
        )
        if line != shown:
            typer.echo(f"job {job_id}: {line}", err=True)
            shown = line
        if state["state"] != "running":
            return state
        time.sleep(POLL_S)
