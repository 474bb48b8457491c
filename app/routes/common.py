"""What the routes share: hits and results in their HTTP form, request-error mapping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Query, Request
from pydantic import ValidationError

from app.schemas import (
    FilterIn,
    FitOut,
    HitOut,
    ProjectIn,
    SearchOut,
)
from app.schemas.filters import KEY_PATTERN
from timbre.errors import InvalidRequestError, UnavailableError
from timbre.fit import MAX_BPM
from timbre.search import SearchResult, SearchService
from timbre.search.fitting import FitQuery
from timbre.settings import ApiSettings
from timbre.store import Hit

ProjectBpm = Annotated[
    float | None,
    Query(gt=0, le=MAX_BPM, allow_inf_nan=False, description="the project's tempo"),
]
"""The project's tempo as a query parameter (browse, exports)."""
ProjectKey = Annotated[
    str | None,
    Query(description="the project's key, e.g. Am", json_schema_extra={"pattern": KEY_PATTERN}),
]
"""The project's key as a query parameter (checked by :class:`ProjectIn`)."""


def from_state(name: str, what: str) -> Callable[[Request], Any]:
    """A dependency giving ``app.state.<name>``; 503 saying "``what`` not configured" if unset."""

    def get(request: Request) -> Any:
        found = getattr(request.app.state, name, None)
        if found is None:
            raise UnavailableError(f"{what} not configured in this service")
        return found

    return get


AudioUrl = Callable[[str, dict[str, Any]], str]
"""The playable URL of an item, from its id and payload."""


def template_urls(template: str) -> AudioUrl:
    """URLs from the API's audio route template (``.../v1/items/{id}/audio``)."""
    return lambda item_id, _: template.replace("%7Bid%7D", item_id).replace("{id}", item_id)


def audio_url(request: Request) -> AudioUrl:
    """The audio URLs of this request's host (url_for is slow: call it once per request)."""
    return template_urls(str(request.url_for("item_audio", item_id="{id}")))


def fit_out(url: str, payload: dict[str, Any], fit: FitQuery) -> FitOut:
    """How a sample fits ``fit``'s project, with the URL of its matched rendition (the sample
    stretched and transposed to the project) when it needs either. ``url`` is its plain audio
    URL; a ``file:`` one has no service to render a rendition, so none is given."""
    found = fit.fit(payload)
    query: dict[str, Any] = {}
    if found.stretch_pct and fit.project.bpm is not None:
        query["bpm"] = f"{fit.project.bpm:g}"
    if query or found.semitones:
        query["semitones"] = found.semitones or 0
    matched = f"{url}?{urlencode(query)}" if query and not url.startswith("file:") else None
    return FitOut(**found.as_dict(), audio_url=matched)


def hit_out(
    url: AudioUrl,
    hit: Hit | None,
    item_id: str,
    payload: dict[str, Any],
    fit: FitQuery | None = None,
) -> HitOut:
    """A hit in its HTTP form; with ``fit``, how it fits that project."""
    score = hit.score if hit else None
    plain = url(item_id, payload)
    fitted = None if fit is None else fit_out(plain, payload, fit)
    return HitOut(id=item_id, score=score, audio_url=plain, fit=fitted, **payload)


def result_out(url: AudioUrl, result: SearchResult) -> SearchOut:
    return SearchOut(
        engine=result.engine,  # type: ignore[arg-type]  # "faiss" or "qdrant", set by route()
        took_ms=round(result.took_ms, 3),
        query=result.query,
        hits=[hit_out(url, h, h.id, h.payload, result.fit) for h in result.hits],
        total=result.total,
    )


def search_out(request: Request, result: SearchResult) -> SearchOut:
    request.state.engine = result.engine
    return result_out(audio_url(request), result)


def as_request_error(exc: ValidationError) -> Exception:
    from fastapi.exceptions import RequestValidationError

    return RequestValidationError(exc.errors())


def project_from_query(**given: Any) -> ProjectIn | None:
    """A project context given as query parameters (``bpm``, ``key``, ...), checked as a
    body's ``context`` is; None without a bpm or a key (nothing for the rest to apply to)."""
    if given.get("bpm") is None and given.get("key") is None:
        return None
    try:
        return ProjectIn.model_validate({k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise as_request_error(exc) from None


def fit_of(service: SearchService, context: ProjectIn | None) -> FitQuery | None:
    """The fit a request's ``context`` asks for (the settings' tolerance by default)."""
    if context is None:
        return None
    return context.query(service.library.limits.tempo_tolerance_pct)


def filter_of(api: ApiSettings, value: FilterIn | None) -> Any:
    """The store filter of a request's filter, within the configured count of values."""
    if value is None:
        return None
    for name, given in value:
        if isinstance(given, list) and len(given) > api.max_filter_values:
            raise InvalidRequestError(
                f"filter.{name}: at most {api.max_filter_values} values, not {len(given)}"
            )
    return value.to_filter()
