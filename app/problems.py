"""Domain errors -> HTTP status and an RFC 9457 problem body. The only place HTTP meets them."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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

_STATUS: list[tuple[type[TimbreError], int, str]] = [
    (InvalidRequestError, 422, "Invalid request"),
    (NotFoundError, 404, "Not found"),
    (ForbiddenPathError, 403, "Forbidden path"),
    (ConflictError, 409, "Conflict"),
    (UnavailableError, 503, "Service unavailable"),
    # RFC 4918's "Insufficient Storage": the request was fine, the server's disk is not.
    (DiskFullError, 507, "Insufficient storage"),
    (StoreError, 503, "Vector store unavailable"),
    (ModelMismatchError, 409, "Model mismatch"),
]


class AuthError(Exception):
    """Missing or wrong API key."""


class PayloadTooLargeError(StarletteHTTPException):
    """A request body over its size limit.

    An HTTPException, so that FastAPI's own body reader passes it on unchanged (it turns every
    other exception raised while reading a body into a bare 400).
    """

    def __init__(self, detail: str) -> None:
        super().__init__(413, detail)


class MalformedBodyError(Exception):
    """A body that is not UTF-8 JSON at all (as opposed to JSON that fails validation)."""


# Statuses the framework raises itself, and the stable code each problem carries.
_HTTP_CODES = {
    400: "malformed_body",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
}
_HTTP_TITLES = {
    400: "Malformed body",
    413: "Payload too large",
    415: "Unsupported media type",
    416: "Range not satisfiable",
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


def problem(
    status: int,
    title: str,
    detail: str,
    code: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def unsupported_media(detail: str, accepted: list[str]) -> JSONResponse:
    """415, with the media types the route takes in ``Accept`` (RFC 9110, section 15.5.16)."""
    return problem(
        415,
        "Unsupported media type",
        detail,
        "unsupported_media_type",
        headers={"Accept": ", ".join(accepted)},
    )


def status_of(exc: TimbreError) -> tuple[int, str]:
    if isinstance(exc, AudioError):
        return (413, "Payload too large") if exc.code == "too_large" else (422, "Unusable audio")
    for kind, status, title in _STATUS:
        if isinstance(exc, kind):
            return status, title
    return 500, "Internal error"


def allowed_methods(request: Request) -> list[str]:
    """The methods the OpenAPI document lists for the request's path (empty if none).

    Starlette's 405 names only the methods of the first route matching the path, while one
    path may have a route per method (a read and a write router); the document has them all.
    """
    paths = request.app.openapi().get("paths", {})
    for template, operations in paths.items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            return sorted(m.upper() for m in operations if m in _METHODS)
    return []


_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


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


def install(app: FastAPI, on_error: Any = None) -> None:
    """Register the handlers; ``on_error(code)`` is called for every problem (metrics)."""

    def count(code: str) -> None:
        if on_error is not None:
            on_error(code)

    @app.exception_handler(TimbreError)
    async def _domain(request: Request, exc: TimbreError) -> JSONResponse:
        status, title = status_of(exc)
        count(exc.code)
        if status == 507:
            log.warning("%s %s: %s", request.method, request.url.path, exc)
        elif status == 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        elif status == 503:
            log.info("%s %s: %s", request.method, request.url.path, exc)
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

    @app.exception_handler(MalformedBodyError)
    async def _malformed(request: Request, exc: MalformedBodyError) -> JSONResponse:
        count("malformed_body")
        return problem(400, "Malformed body", str(exc), "malformed_body")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        code = _HTTP_CODES.get(status, "http_error")
        detail = str(exc.detail)
        # FastAPI turns a body it cannot decode into a bare 400; name what was wrong with it.
        if status == 400 and exc.__cause__ is not None:
            detail = malformed_detail(exc.__cause__) or detail
        count(code)
        headers = getattr(exc, "headers", None)
        allowed = allowed_methods(request) if status == 405 else []
        if allowed:
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
        return problem(status, _HTTP_TITLES.get(status, detail), detail, code, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A write the disk refused is no bug (a rendition, a cache file): say so, with the
        # cause, instead of a bare 500.
        full = as_disk_full(exc, f"{request.method} {request.url.path}")
        if full is not None:
            log.warning("%s %s: %s", request.method, request.url.path, full)
            count(full.code)
            return problem(507, "Insufficient storage", str(full), full.code)
        # The trace goes to the log, never to the client.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        count("internal_error")
        return problem(
            500,
            "Internal error",
            "an unexpected error occurred; it has been logged",
            "internal_error",
        )
