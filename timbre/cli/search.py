"""``timbre search``: through a running service, or directly on the embedded store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from timbre.cli.app import app, fail
from timbre.errors import TimbreError

if TYPE_CHECKING:
    from timbre.settings import Settings


@app.command()
def search(
    text: Annotated[str | None, typer.Argument(help="Describe the sound.")] = None,
    like: Annotated[
        str | None, typer.Option("--like", help="A reference: an audio FILE or an indexed ID.")
    ] = None,
    alpha: Annotated[
        float, typer.Option(help="Weight of the text when both are given (0-1).")
    ] = 0.5,
    genre: Annotated[list[str] | None, typer.Option(help="Genre (repeatable: any of).")] = None,
    instrument: Annotated[list[str] | None, typer.Option(help="Instrument (repeatable).")] = None,
    kind: Annotated[str | None, typer.Option(help="one_shot or loop.")] = None,
    key: Annotated[
        list[str] | None, typer.Option(help="Musical key, e.g. Am (repeatable).")
    ] = None,
    pack: Annotated[list[str] | None, typer.Option(help="Pack (repeatable).")] = None,
    bpm: Annotated[str | None, typer.Option(help="BPM range, e.g. 120-130.")] = None,
    top_k: Annotated[int, typer.Option("-k", "--top-k", help="Results wanted.")] = 10,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON the API returns.")
    ] = False,
) -> None:
    """Search from the terminal: through a running service, or directly on the embedded store."""
    from app.schemas import FilterIn
    from timbre.cli.wiring import read_service_file
    from timbre.settings import load_settings

    if not text and not like:
        raise typer.BadParameter("give a TEXT, a --like reference, or both")
    raw = {
        "genre": genre,
        "instrument": instrument,
        "kind": kind,
        "key": key,
        "pack": pack,
        "bpm": bpm,
    }
    filter_json = {k: v for k, v in raw.items() if v}
    try:
        FilterIn.model_validate(filter_json)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    try:
        settings = load_settings()
        route, body = _search_body(text, like, alpha, filter_json, top_k)
        service = read_service_file(settings)
        if service is not None:
            data = _search_http(settings, service["url"], route, body)
        else:
            data = _search_local(settings, route, body)
    except TimbreError as exc:
        raise fail(exc) from exc
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(f"{len(data['hits'])} results from {data['engine']} in {data['took_ms']:.1f} ms")
    for rank, hit in enumerate(data["hits"], 1):
        facts = " ".join(
            str(x)
            for x in (
                hit.get("instrument"),
                hit.get("kind"),
                hit.get("bpm") and f"{hit['bpm']}bpm",
                hit.get("key"),
            )
            if x
        )
        typer.echo(f"{rank:>3}. {hit['score']:.3f}  {facts:<28} {hit.get('path')}")


def _search_body(
    text: str | None, like: str | None, alpha: float, filter_json: dict[str, Any], top_k: int
) -> tuple[str, dict[str, Any]]:
    """The API route and JSON body of a terminal search (the local path reads the same)."""
    body: dict[str, Any] = {"top_k": top_k, "filter": filter_json or None}
    if text:
        body["query"] = text
    if like:
        if Path(like).exists():
            body["path"] = str(Path(like).resolve())
        else:
            body["id"] = like
        if text:
            body["alpha"] = alpha
    route = "hybrid" if text and like else ("audio" if like else "text")
    return route, body


def _search_http(settings: Settings, url: str, route: str, body: dict[str, Any]) -> dict[str, Any]:
    import httpx

    headers = {}
    if settings.api.api_key is not None:
        headers["X-API-Key"] = settings.api.api_key.get_secret_value()
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        if "path" in body:  # the service may not see this machine's files: upload them
            path = Path(body.pop("path"))
            form = {
                k: (json.dumps(v) if k == "filter" else str(v))
                for k, v in body.items()
                if v is not None
            }
            with path.open("rb") as handle:
                response = client.post(
                    f"/v1/search/{route}", data=form, files={"file": (path.name, handle)}
                )
        else:
            response = client.post(f"/v1/search/{route}", json=body)
    data = response.json()
    if response.status_code != 200:
        raise TimbreError(
            f"the service answered {response.status_code}: {data.get('detail', data)}"
        )
    return dict(data)


def _search_local(settings: Settings, route: str, body: dict[str, Any]) -> dict[str, Any]:
    from app.schemas import FilterIn
    from timbre.cli.wiring import build_service
    from timbre.search import AudioRef

    service = build_service(settings)
    service.snapshots.refresh()
    search_filter = FilterIn.model_validate(body["filter"] or {}).to_filter()
    ref = None
    if "path" in body:
        path = Path(body["path"])
        ref = AudioRef(upload=path.read_bytes(), upload_name=path.name)
    elif "id" in body:
        ref = AudioRef(id=body["id"])
    top_k = body["top_k"]
    try:
        if route == "hybrid" and ref is not None:
            result = service.search_hybrid(
                body["query"], ref, alpha=body["alpha"], top_k=top_k, filter=search_filter
            )
        elif route == "audio" and ref is not None:
            result = service.search_audio(ref, top_k=top_k, filter=search_filter)
        else:
            result = service.search_text(body["query"], top_k=top_k, filter=search_filter)
    finally:
        service.store.close()
    hits = [{"id": h.id, "score": h.score, **h.payload} for h in result.hits]
    return {"engine": result.engine, "took_ms": result.took_ms, "query": result.query, "hits": hits}
