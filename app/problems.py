"""Domain errors -> HTTP status and an RFC 9457 problem body. The only place HTTP meets them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from timbre.errors import (
    AudioError,
    ConflictError,
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
    (StoreError, 503, "Vector store unavailable"),
    (ModelMismatchError, 409, "Model mismatch"),
]


class AuthError(Exception):
    """Missing or wrong API key."""


class PayloadTooLargeError(Exception):
    """An upload over the size limit."""


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


def field_errors(errors: Sequence[Any]) -> tuple[str, list[dict[str, Any]]]:
    """A validation failure's ``detail`` and ``errors`` (pydantic's errors, body fields named
    by their dotted path)."""
    fields = [
        {"field": ".".join(str(p) for p in err["loc"] if p != "body"), "reason": err["msg"]}
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
        if status == 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        elif status == 503:
            log.info("%s %s: %s", request.method, request.url.path, exc)
        return problem(status, title, detail_of(exc), exc.code)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail, errors = field_errors(exc.errors())
        count("validation_error")
        return problem(422, "Invalid request", detail, "validation_error", errors=errors)

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError) -> JSONResponse:
        count("unauthorized")
        return problem(
            401, "Unauthorized", str(exc), "unauthorized", headers={"WWW-Authenticate": "Bearer"}
        )

    @app.exception_handler(PayloadTooLargeError)
    async def _too_large(request: Request, exc: PayloadTooLargeError) -> JSONResponse:
        count("too_large")
        return problem(413, "Payload too large", str(exc), "too_large")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        count(code)
        return problem(
            exc.status_code,
            str(exc.detail),
            str(exc.detail),
            code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The trace goes to the log, never to the client.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        count("internal_error")
        return problem(
            500,
            "Internal error",
            "an unexpected error occurred; it has been logged",
            "internal_error",
        )
