"""``timbre ingest`` beside a running ``timbre serve``: the job runs inside the service.

Only one process may open the embedded store, so while a service owns it the command hands
its job over ``POST /v1/ingest`` with every option it was given (roots, shard, workers,
batch size, profile, prune, dry run, rehash, snapshot), prints the job's progress and ends
with the job's summary and exit code. When the service refuses the job, the message says
exactly what to change.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from timbre.errors import StoreLockedError
from timbre.store.pathtext import path_text

if TYPE_CHECKING:
    from timbre.settings import Settings

POLL_S = 1.0
"""Seconds between two looks at the job's progress."""

_BODY_FIELDS = frozenset(
    {"prune", "dry_run", "rehash", "profile", "workers", "batch_size", "shard", "snapshot"}
)
"""The job options ``POST /v1/ingest`` takes (``app.schemas.admin.IngestIn``)."""


def job_body(roots: Sequence[Path], given: Mapping[str, Any]) -> dict[str, Any]:
    """The ``POST /v1/ingest`` body for ``roots`` and the options given on the command line.

    Args:
        roots: the library roots.
        given: every option of ``timbre ingest`` by its body name; None = not given, so the
            service's own setting applies (its device may want another batch size).
    """
    body: dict[str, Any] = {"paths": [path_text(p.expanduser().resolve()) for p in roots]}
    unknown = set(given) - _BODY_FIELDS
    if unknown:  # an option that cannot travel must never be dropped quietly
        raise StoreLockedError(f"the service cannot take the options {sorted(unknown)}")
    body.update({k: list(v) if k == "shard" else v for k, v in given.items() if v is not None})
    return body


def _refusal(url: str, status: int, detail: str, roots: Sequence[Path]) -> str:
    text = f"the service at {url} refused the job ({status}): {detail}"
    if status == 403:
        listed = ", ".join(f'"{path_text(p.expanduser().resolve())}"' for p in roots)
        text += (
            ". The service takes jobs only inside its library roots: the roots this data dir "
            "already indexes, and api.library_roots. To index a new library, add it to "
            f"api.library_roots (e.g. TIMBRE_API__LIBRARY_ROOTS='[{listed}]' or "
            "api.library_roots in the YAML named by TIMBRE_CONFIG) and restart `timbre serve`, "
            "or stop the service and run `timbre ingest` again"
        )
    elif status == 401:
        text += ". Set TIMBRE_API__API_KEY to the service's API key"
    return text


def ingest_through_service(
    settings: Settings,
    locked: Exception,
    roots: Sequence[Path],
    given: Mapping[str, Any],
) -> tuple[dict[str, Any], int]:
    """Run the job inside the service that owns the embedded store, printing its progress.

    Raises:
        StoreLockedError: no service took the job (none announced itself, it cannot be
            reached, or it refused), or the job failed inside it.
    """
    import httpx

    from timbre.cli.owner import read_service_file

    service = read_service_file(settings)
    if service is None:
        raise StoreLockedError(
            f"{locked}; no running Timbre service announced itself to take the job"
        )
    url = service["url"]
    typer.echo(
        f"the embedded store is owned by the service at {url}: handing the job to it", err=True
    )
    headers = {}
    if settings.api.api_key is not None:
        headers["X-API-Key"] = settings.api.api_key.get_secret_value()
    job_id = None
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            started = client.post("/v1/ingest", json=job_body(roots, given))
            if started.status_code != 202:
                try:
                    detail = started.json().get("detail", started.text)
                except ValueError:
                    detail = started.text
                raise StoreLockedError(_refusal(url, started.status_code, detail, roots))
            job_id = started.json()["job_id"]
            state = _follow(client, job_id)
    except httpx.HTTPError as exc:
        raise StoreLockedError(
            f"{locked}; the service at {url} could not be reached: {exc}"
        ) from exc
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
        return {"job_id": job_id, "state": "failed", "error": state.get("error")}, int(
            state.get("exit_code") or 3
        )
    return state["summary"], int(state["exit_code"])


def ask_service(
    settings: Settings,
    locked: Exception,
    method: str,
    route: str,
    *,
    what: str,
    **request: Any,
) -> Any:
    """One request to the service that owns the embedded store; its JSON answer.

    For the commands that read or rewrite the whole library in one call (``duplicates``,
    ``relabel``): while a service owns the store they ask it instead of refusing.

    Raises:
        StoreLockedError: no service announced itself, it cannot be reached, or it refused
            (its reason is in the message).
    """
    import httpx

    from timbre.cli.owner import read_service_file

    service = read_service_file(settings)
    if service is None:
        raise StoreLockedError(f"{locked}; no running Timbre service announced itself")
    url = service["url"]
    typer.echo(f"the embedded store is owned by the service at {url}: asking it {what}", err=True)
    headers = {}
    if settings.api.api_key is not None:
        headers["X-API-Key"] = settings.api.api_key.get_secret_value()
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=None) as client:
            response = client.request(method, route, **request)
    except httpx.HTTPError as exc:
        raise StoreLockedError(
            f"{locked}; the service at {url} could not be reached: {exc}"
        ) from exc
    try:
        data = response.json()
    except ValueError:
        data = {"detail": response.text}
    if response.status_code != 200:
        detail = data.get("detail", data) if isinstance(data, dict) else data
        text = f"the service at {url} refused ({response.status_code}): {detail}"
        if response.status_code == 401:
            text += ". Set TIMBRE_API__API_KEY to the service's API key"
        raise StoreLockedError(text)
    return data


def _follow(client: Any, job_id: str) -> dict[str, Any]:
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
