"""What the routes share: hits and results in their HTTP form, request-error mapping."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import ValidationError

from app.schemas import (
    FilterIn,
    HitOut,
    SearchOut,
)
from timbre.errors import InvalidRequestError
from timbre.search import SearchResult
from timbre.settings import ApiSettings
from timbre.store import Hit


def audio_url(request: Request) -> str:
    """The audio URL template of this request's host: url_for is slow, so call it once."""
    return str(request.url_for("item_audio", item_id="{id}"))


def hit_out(url: str, hit: Hit | None, item_id: str, payload: dict[str, Any]) -> HitOut:
    return HitOut(
        id=item_id,
        score=hit.score if hit else None,
        audio_url=url.replace("%7Bid%7D", item_id).replace("{id}", item_id),
        **payload,
    )


def search_out(request: Request, result: SearchResult) -> SearchOut:
    request.state.engine = result.engine
    url = audio_url(request)
    return SearchOut(
        engine=result.engine,  # type: ignore[arg-type]  # "faiss" or "qdrant", set by route()
        took_ms=round(result.took_ms, 3),
        query=result.query,
        hits=[hit_out(url, h, h.id, h.payload) for h in result.hits],
    )


def as_request_error(exc: ValidationError) -> Exception:
    from fastapi.exceptions import RequestValidationError

    return RequestValidationError(exc.errors())


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
