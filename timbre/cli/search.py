"""``timbre search``: through a running service, or directly on the embedded store."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from timbre.cli.app import app
from timbre.errors import ExitCode, TimbreError

if TYPE_CHECKING:
    from pydantic import ValidationError

    from timbre.settings import Settings


@app.command()
def search(
    text: Annotated[
        str | None,
        typer.Argument(
            help='Describe the sound; "-word" or -"a phrase" steers away from it '
            '(quote it all: "kick -distorted").'
        ),
    ] = None,
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
        list[str] | None,
        typer.Option(
            help="The project's key, e.g. Am: each hit shows how it fits. Repeated: keys to "
            "filter on."
        ),
    ] = None,
    pack: Annotated[list[str] | None, typer.Option(help="Pack (repeatable).")] = None,
    bpm: Annotated[
        str | None,
        typer.Option(
            help="The project's tempo, e.g. 124: each hit shows the stretch it needs. A range, "
            "e.g. 120-130: filter on it."
        ),
    ] = None,
    sort: Annotated[
        str,
        typer.Option(help="With a project tempo or key: fit (fitting hits first) or score."),
    ] = "fit",
    only_fitting: Annotated[
        bool, typer.Option("--only-fitting", help="Only the hits that fit the project.")
    ] = False,
    top_k: Annotated[int, typer.Option("-k", "--top-k", help="Results wanted.")] = 10,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON the API returns.")
    ] = False,
) -> None:
    """Search from the terminal: through a running service, or directly on the embedded store."""
    from timbre.cli.data_dir import require_index
    from timbre.cli.owner import read_service_file
    from timbre.settings import load_settings

    if not text and not like:
        raise typer.BadParameter("give a TEXT, a --like reference, or both")
    avoided = _avoided(text)
    if not 0.0 <= alpha <= 1.0:
        raise typer.BadParameter(f"a number from 0 to 1, not {alpha:g}", param_hint="--alpha")
    # One tempo and one key are the project's (as in a palette's context); ranges and several
    # keys filter.
    project_bpm = bpm if bpm is not None and _ONE_NUMBER.match(bpm) else None
    project_key = key[0] if key and len(key) == 1 else None
    raw = {
        "genre": genre,
        "instrument": instrument,
        "kind": kind,
        "key": None if project_key else key,
        "pack": pack,
        "bpm": None if project_bpm else bpm,
    }
    filter_json = _checked_filter({k: v for k, v in raw.items() if v})
    context = _checked_context(project_bpm, project_key, sort, only_fitting)
    settings = load_settings()
    if not 1 <= top_k <= settings.api.max_top_k:
        raise typer.BadParameter(
            f"a count from 1 to {settings.api.max_top_k}, not {top_k}", param_hint="-k/--top-k"
        )
    route, body = _search_body(text, like, alpha, filter_json, top_k)
    if context is not None:
        body["context"] = context
    service = read_service_file(settings)
    if service is not None:
        data = _search_http(settings, service["url"], route, body)
    else:
        require_index(settings)
        data = _search_local(settings, route, body)
    if not data["hits"]:
        _no_such_values(settings, service["url"] if service else None, filter_json)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    away = f" (away from: {', '.join(avoided)})" if avoided else ""
    typer.echo(
        f"{len(data['hits'])} results from {data['engine']} in {data['took_ms']:.1f} ms{away}"
    )
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
        if hit.get("fit"):
            typer.echo(f"{'':>12}{fit_text(hit['fit'])}")


def fit_text(fit: dict[str, Any]) -> str:
    """A hit's fit in words: ``fits: stretch +1.6 % at double time, key relative``."""
    parts = []
    stretch, multiple = fit.get("stretch_pct"), fit.get("tempo_multiple")
    if stretch is not None:
        timing = {2.0: " at double time", 0.5: " at half time"}.get(multiple or 1.0, "")
        parts.append(f"stretch {stretch:+.1f} %{timing}")
    relation, semitones = fit.get("key_relation"), fit.get("semitones")
    if relation is not None:
        parts.append(f"key {relation}" + (f", transpose {semitones:+d} st" if semitones else ""))
    verdict = "fits" if fit.get("fits") else "does not fit"
    return f"{verdict}: {', '.join(parts)}" if parts else f"{verdict} (no tempo or key to match)"


def _avoided(text: str | None) -> tuple[str, ...]:
    """The words ``text`` steers away from (the service reads them the same way); a text
    of such words only is refused here, before any model loads."""
    from timbre.errors import InvalidRequestError
    from timbre.search.steer import parse_text

    if not text:
        return ()
    try:
        return parse_text(text).avoid
    except InvalidRequestError as exc:
        raise typer.BadParameter(str(exc), param_hint="TEXT") from None


def _search_body(
    text: str | None, like: str | None, alpha: float, filter_json: dict[str, Any], top_k: int
) -> tuple[str, dict[str, Any]]:
    """The API route and JSON body of a terminal search (the local path reads the same)."""
    body: dict[str, Any] = {"top_k": top_k, "filter": filter_json or None}
    if text:
        body["query"] = text
    if like:
        if Path(like).expanduser().is_file():
            body["path"] = str(Path(like).expanduser().resolve())
        elif _is_uuid(like):
            body["id"] = like
        else:
            raise typer.BadParameter(
                f"{like!r} is neither an audio file nor the id of an indexed sample (ids look "
                "like 0b6c1a52-6f0e-5c3e-9a3b-3c1e2f4d5a6b; `timbre search --json` shows them)",
                param_hint="--like",
            )
        if text:
            body["alpha"] = alpha
    route = "hybrid" if text and like else ("audio" if like else "text")
    return route, body


def _is_uuid(text: str) -> bool:
    import uuid

    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


_OPTIONS = {"genre": "--genre", "instrument": "--instrument", "kind": "--kind", "key": "--key"}
_OPTIONS |= {"pack": "--pack", "bpm": "--bpm", "sort": "--sort", "only_fitting": "--only-fitting"}
_ONE_NUMBER = re.compile(r"^\s*(\d+(\.\d*)?|\.\d+)\s*$")
"""A single tempo (``124``), as opposed to a range (``120-130``, ``-130``: at most 130)."""


def _checked_context(
    bpm: str | None, key: str | None, sort: str, only_fitting: bool
) -> dict[str, Any] | None:
    """The project context of the options (None: neither a tempo nor a key), validated as
    the API validates it, a problem on one line naming the option."""
    from pydantic import ValidationError

    from app.schemas import ProjectIn

    if sort not in ("score", "fit"):
        raise typer.BadParameter(f"fit or score, not {sort!r}", param_hint="--sort")
    if bpm is None and key is None:
        if only_fitting:
            raise typer.BadParameter(
                "needs the project's tempo or key: --bpm 124 or --key Am",
                param_hint="--only-fitting",
            )
        return None
    context = {"bpm": float(bpm) if bpm else None, "key": key, "sort": sort}
    context |= {"only_fitting": only_fitting}
    try:
        ProjectIn.model_validate(context)
    except ValidationError as exc:
        field, message = _first_problem(exc)
        raise typer.BadParameter(message, param_hint=_OPTIONS.get(field, field)) from None
    return {k: v for k, v in context.items() if v is not None}


def _first_problem(exc: ValidationError) -> tuple[str, str]:
    """The field and the message of a validation error's first problem, in a person's words."""
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    return field, str(first["msg"]).removeprefix("Value error, ")


def _checked_filter(filter_json: dict[str, Any]) -> dict[str, Any]:
    """The filter options, validated as the API validates them, each problem on one line
    naming the option (not pydantic's report)."""
    from pydantic import ValidationError

    from app.schemas import FilterIn

    kind = filter_json.get("kind")
    if kind is not None and kind not in ("one_shot", "loop"):
        raise typer.BadParameter(f"one_shot or loop, not {kind!r}", param_hint="--kind")
    try:
        FilterIn.model_validate(filter_json)
    except ValidationError as exc:
        field, message = _first_problem(exc)
        if field == "bpm":
            message = f"{message}, or 'MIN-' / '-MAX' (got {filter_json['bpm']!r})"
        raise typer.BadParameter(message, param_hint=_OPTIONS.get(field, field)) from None
    return filter_json


_KEYWORD_OPTIONS = ("genre", "instrument", "pack")
"""Filter options matched against the library's own values (facets): a misspelling finds
nothing, so it is named, with the values that come closest."""


def _no_such_values(settings: Settings, url: str | None, filter_json: dict[str, Any]) -> None:
    """After an empty result: stop with "did you mean ...?" for a filter value that no sample
    has, so a typo is not mistaken for an empty library."""
    import difflib

    fields = [f for f in _KEYWORD_OPTIONS if filter_json.get(f)]
    if not fields:
        return
    try:
        known = _facet_values(settings, url, fields)
    except TimbreError:
        return  # the empty result stands; the facets were only for a hint
    for field in fields:
        values = known.get(field, [])
        folded = {v.casefold() for v in values}
        for given in filter_json[field]:
            if given.casefold() in folded:
                continue
            close = difflib.get_close_matches(given.casefold(), sorted(folded), n=3, cutoff=0.6)
            if close:
                hint = f"did you mean {' or '.join(repr(c) for c in close)}?"
            elif values:
                hint = f"this library has: {', '.join(values[:12])}"
            else:
                hint = f"no sample in this library has a {field} at all"
            typer.echo(
                f"error: {_OPTIONS[field]}: no sample has {field} {given!r}; {hint}", err=True
            )
            raise typer.Exit(ExitCode.FAILED)


def _facet_values(settings: Settings, url: str | None, fields: list[str]) -> dict[str, list[str]]:
    """The values each of ``fields`` takes in the library (through the service if one runs)."""
    if url is not None:
        import httpx

        headers = {}
        if settings.api.api_key is not None:
            headers["X-API-Key"] = settings.api.api_key.get_secret_value()
        params: list[tuple[str, str | int | float | bool | None]] = [("field", f) for f in fields]
        params.append(("limit", settings.facets.max_limit))
        try:
            response = httpx.get(f"{url}/v1/facets", params=params, headers=headers, timeout=30)
            facets = response.json()["facets"]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise TimbreError(f"facets unavailable: {exc}") from exc
        return {f: [str(v["value"]) for v in facets.get(f, [])] for f in fields}
    from timbre.cli.wiring import build_library

    library = build_library(settings)
    try:
        found = library.facets(fields, limit=settings.facets.max_limit)
    finally:
        library.store.close()
    return {f: [str(v["value"]) for v in found["facets"].get(f, [])] for f in fields}


def _search_http(settings: Settings, url: str, route: str, body: dict[str, Any]) -> dict[str, Any]:
    import httpx

    headers = {}
    if settings.api.api_key is not None:
        headers["X-API-Key"] = settings.api.api_key.get_secret_value()
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        if "path" in body:  # the service may not see this machine's files: upload them
            path = Path(body.pop("path"))
            form = {
                k: (json.dumps(v) if k in ("filter", "context") else str(v))
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
    from app.schemas import FilterIn, ProjectIn
    from timbre.cli.wiring import build_service
    from timbre.search import AudioRef

    service = build_service(settings)
    service.library.snapshots.refresh()
    search_filter = FilterIn.model_validate(body["filter"] or {}).to_filter()
    given = body.get("context")
    fit = None
    if given is not None:
        fit = ProjectIn.model_validate(given).query(service.library.limits.tempo_tolerance_pct)
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
                body["query"], ref, alpha=body["alpha"], top_k=top_k, filter=search_filter, fit=fit
            )
        elif route == "audio" and ref is not None:
            result = service.search_audio(ref, top_k=top_k, filter=search_filter, fit=fit)
        else:
            result = service.search_text(body["query"], top_k=top_k, filter=search_filter, fit=fit)
    finally:
        service.library.store.close()
    hits = [
        {
            "id": h.id,
            "score": h.score,
            **h.payload,
            # no service to render a matched rendition from here
            "fit": None if fit is None else {**fit.fit(h.payload).as_dict(), "audio_url": None},
        }
        for h in result.hits
    ]
    return {"engine": result.engine, "took_ms": result.took_ms, "query": result.query, "hits": hits}
