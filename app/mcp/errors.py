"""Every failure of a tool call as the problem the HTTP API would answer for it."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from app.problems import AuthError, Problem, detail_of, field_errors, status_of
from timbre.errors import TimbreError

log = logging.getLogger("timbre.mcp")

UNEXPECTED = "an unexpected error occurred; it has been logged"


class ProblemError(Exception):
    """A problem answered by the service over HTTP, raised again on this side."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.detail)
        self.problem = problem


def problem_of(exc: BaseException) -> Problem:
    """The HTTP problem of ``exc``: same status, title, detail and code as the API's handlers."""
    if isinstance(exc, ProblemError):
        return exc.problem
    if isinstance(exc, TimbreError):
        status, title = status_of(exc)
        if status == 500:
            log.error("tool failed: %s", exc)
        return Problem.of(status, title, detail_of(exc), exc.code)
    if isinstance(exc, ValidationError):
        detail, errors = field_errors(exc.errors())
        return Problem.of(422, "Invalid request", detail, "validation_error", errors)
    if isinstance(exc, AuthError):
        return Problem.of(401, "Unauthorized", str(exc), "unauthorized")
    log.error("unexpected error in a tool call", exc_info=exc)
    return Problem.of(500, "Internal error", UNEXPECTED, "internal_error")
