"""Domain errors -> HTTP status and an RFC 9457 problem body. The only place HTTP meets them."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.params import Form
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.routing import Match, Mount

from timbre.collections_db import name_problem
from timbre.diskspace import as_disk_full
from timbre.errors import (
    AudioError,
    ConflictError,
    DiskFullError,
    ForbiddenPathError,
    InvalidRequestError,
    ModelMismatchError,
    NotFoundError,
    StoreError,
    TimbreError,
    UnavailableError,
)

log = logging.getLogger("timbre.api")

PROBLEM_JSON = "application/problem+json"
JSON = "application/json"
MULTIPART = "multipart/form-data"

_STATUS: list[tuple[type[TimbreError], int, str]] = [
    (InvalidRequestError, 422, "Invalid request"),
    (NotFoundError, 404, "Not found"),
    (ForbiddenPathError, 403, "Forbidden path"),
    (ConflictError, 409, "Conflict"),
    (UnavailableError, 503, "Service unavailable"),
    (DiskFullError, 507, "Insufficient storage"),  # RFC 4918: the request was fine, the disk not
    (StoreError, 503, "Vector store unavailable"),
    (ModelMismatchError, 409, "Model mismatch"),
]


class AuthError(Exception):
    """Missing or wrong API key."""


class MalformedBodyError(HTTPException):
    """A body that is not UTF-8 JSON at all (as opposed to JSON that fails validation)."""

    def __init__(self, detail: str) -> None:
        super().__init__(400, detail)


# Statuses the framework raises itself: the stable code and title of each problem.
_HTTP = {
    400: ("malformed_body", "Malformed body"),
    404: ("not_found", None),
    405: ("method_not_allowed", None),
    413: ("too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    416: ("range_not_satisfiable", "Range not satisfiable"),
}


def malformed_detail(exc: BaseException, field: str = "body") -> str | None:
    """What is wrong with a body that could not be decoded as JSON; None for other errors."""
    if isinstance(exc, UnicodeDecodeError):
        return f"{field}: not valid UTF-8 (byte {exc.start})"
    if isinstance(exc, RecursionError):
        return f"{field}: JSON nested too deeply"
    if isinstance(exc, json.JSONDecodeError):
        return f"{field}: not valid JSON ({exc.msg} at char {exc.pos})"
    if isinstance(exc, ValueError):  # e.g. an integer of more digits than Python converts
        return f"{field}: not valid JSON ({exc})"
    return None


def parse_json(raw: bytes | str, field: str = "body") -> Any:
    """Decode JSON the way FastAPI's own routes do, as a 400 problem when it is not JSON."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError, JSONDecodeError
        detail = malformed_detail(exc, field)
        if detail is None:
            raise
        raise MalformedBodyError(detail) from exc


class Problem(BaseModel):
    """RFC 9457 problem details, with a stable ``code``: the body every failed request gets."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, Any]] | None = None

    @classmethod
    def of(
        cls, status: int, title: str, detail: str, code: str, errors: list[Any] | None = None
    ) -> Problem:
        return cls(
            type=f"/problems/{code}",
            title=title,
            status=status,
            detail=detail,
            code=code,
            errors=errors or None,
        )


def problem(
    status: int,
    title: str,
    detail: str,
    code: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem.of(status, title, detail, code, errors).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_of(exc: TimbreError) -> tuple[int, str]:
    if isinstance(exc, AudioError):
        return (413, "Payload too large") if exc.code == "too_large" else (422, "Unusable audio")
    for kind, status, title in _STATUS:
        if isinstance(exc, kind):
            return status, title
    return 500, "Internal error"


def detail_of(exc: TimbreError) -> str:
    """The ``detail`` a domain error's problem body carries."""
    return exc.reason if isinstance(exc, AudioError) else str(exc)


def _reason(err: Any) -> str:
    """pydantic's message, or for a collection name that fails its pattern, which rule it
    breaks (a pattern cannot say which character it refused)."""
    given = err.get("input")
    if err.get("type") == "string_pattern_mismatch" and err["loc"][-1:] == ("name",):
        why = name_problem(given.strip()) if isinstance(given, str) else None
        if why is not None:
            return f"collection name {given.strip()!r}: {why}"
    return str(err["msg"])


def field_errors(errors: Sequence[Any]) -> tuple[str, list[dict[str, Any]]]:
    """A validation failure's ``detail`` and ``errors`` (pydantic's errors, body fields named
    by their dotted path)."""
    fields = [
        {"field": ".".join(str(p) for p in err["loc"] if p != "body"), "reason": _reason(err)}
        for err in errors
    ]
    return "; ".join(f"{e['field'] or 'body'}: {e['reason']}" for e in fields), fields


def media_type(headers: Headers) -> str | None:
    value = headers.get("content-type")
    return value.split(";", 1)[0].strip().lower() if value else None


LEGACY_UPLOADS = frozenset({"/v1/search/audio", "/v1/search/hybrid"})
"""Paths that took JSON or an upload before the ``/upload`` routes; a multipart body sent to
them is answered by those routes (app.middleware.Reroute), for one more release."""


async def body_media(request: Request) -> None:
    """415 for a body in a media type its route does not read, with those it does in Accept."""
    field = getattr(request.scope.get("route"), "body_field", None)
    headers = request.headers
    has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
    if field is None or not has_body:
        return
    if isinstance(field.field_info, Form):
        accepted = [MULTIPART]
    else:
        accepted = [JSON, *([MULTIPART] if request.url.path in LEGACY_UPLOADS else [])]
    media = media_type(headers)
    if media is not None and media.startswith("application/") and media.endswith("+json"):
        media = JSON
    if media not in accepted:
        raise HTTPException(
            415,
            f"send the body as {' or '.join(accepted)}, not {media or 'no Content-Type'}",
            headers={"Accept": ", ".join(accepted)},
        )


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE")


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route takes at the request's path: Starlette's 405 names only those of
    the first route it matched, while a path has a route per method."""
    routes = [r for r in request.app.router.routes if not isinstance(r, Mount)]
    return [
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    ]


def install(app: FastAPI, count: Callable[[str], None] = lambda code: None) -> None:
    """Register the handlers; ``count(code)`` is called for every problem (metrics)."""

    @app.exception_handler(TimbreError)
    async def _domain(request: Request, exc: TimbreError) -> JSONResponse:
        status, title = status_of(exc)
        count(exc.code)
        if status in (500, 503, 507):
            level = {500: logging.ERROR, 503: logging.INFO, 507: logging.WARNING}[status]
            log.log(level, "%s %s: %s", request.method, request.url.path, exc)
        return problem(status, title, detail_of(exc), exc.code)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        invalid_json = [e for e in exc.errors() if e.get("type") == "json_invalid"]
        if invalid_json:  # FastAPI reports a JSON syntax error as validation; it is not JSON
            error = invalid_json[0]
            position = error["loc"][-1] if error.get("loc") else 0
            reason = (error.get("ctx") or {}).get("error", error.get("msg", ""))
            count("malformed_body")
            detail = f"body: not valid JSON ({reason} at char {position})"
            return problem(400, "Malformed body", detail, "malformed_body")
        detail, errors = field_errors(exc.errors())
        count("validation_error")
        return problem(422, "Invalid request", detail, "validation_error", errors=errors)

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError) -> JSONResponse:
        count("unauthorized")
        return problem(
            401, "Unauthorized", str(exc), "unauthorized", headers={"WWW-Authenticate": "Bearer"}
        )

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        status, detail = exc.status_code, str(exc.detail)
        code, title = _HTTP.get(status, ("http_error", None))
        headers = dict(exc.headers or {})
        if status == 400 and not isinstance(exc, MalformedBodyError) and exc.__cause__:
            # FastAPI's bare 400 for a body it could not decode: say why
            detail = malformed_detail(exc.__cause__) or detail
        elif status == 405 and (allowed := _allowed_methods(request)):
            headers["Allow"] = ", ".join(allowed)
        count(code)
        return problem(status, title or detail, detail, code, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A write the disk refused (a rendition, a cache file) is no bug: say so, with its cause.
        full = as_disk_full(exc, f"{request.method} {request.url.path}")
        if full is not None:
            log.warning("%s %s: %s", request.method, request.url.path, full)
            count(full.code)
            return problem(507, "Insufficient storage", str(full), full.code)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        count("internal_error")
        detail = "an unexpected error occurred; it has been logged"
        return problem(500, "Internal error", detail, "internal_error")
