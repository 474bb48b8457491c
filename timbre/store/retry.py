"""Bounded retries of Qdrant server requests that failed for a transient reason."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from timbre.errors import StoreError

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_HTTP_STATUS = frozenset({408, 429, 502, 503, 504})
"""Timeouts, rate limiting, a proxy or server (re)starting; a 500 is a bug, not a blip."""

_TRANSIENT_GRPC_CODES = frozenset(
    {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED"}
)


def is_transient(exc: BaseException) -> bool:
    """True for failures a retry can cure: network errors, timeouts, 429/502/503/504."""
    import httpx
    from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if isinstance(
        exc, ResourceExhaustedResponse | ConnectionError | TimeoutError | httpx.TransportError
    ):
        return True
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code in TRANSIENT_HTTP_STATUS
    if isinstance(exc, ResponseHandlingException):
        # Wraps both transport failures (transient) and unparsable responses (not).
        return isinstance(exc.source, httpx.TransportError | ConnectionError | TimeoutError)
    code = getattr(exc, "code", None)
    if callable(code):  # grpc.RpcError, without importing grpc
        status = getattr(code(), "name", "")
        return status in _TRANSIENT_GRPC_CODES
    return False


def _retry_after_s(exc: BaseException) -> float:
    return float(getattr(exc, "retry_after_s", 0) or 0)


def call_with_retries(
    fn: Callable[[], T],
    *,
    what: str,
    max_attempts: int,
    backoff_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``fn``; on a transient failure wait and try again, up to ``max_attempts`` in all.

    The wait starts at ``backoff_s`` and doubles (or follows the server's Retry-After).

    Raises:
        StoreError: a non-transient failure (at once), or the last transient one once the
            attempts are used up; the original exception is chained.
    """
    for attempt in range(1, max_attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc):
                raise StoreError(f"Qdrant {what} failed: {exc}") from exc
            if attempt == max_attempts:
                raise StoreError(
                    f"Qdrant {what} failed after {max_attempts} attempts "
                    f"(transient errors; is the server up?): {exc}"
                ) from exc
            wait_s = max(backoff_s * 2 ** (attempt - 1), _retry_after_s(exc))
            log.warning(
                "Qdrant %s: transient failure (%s), attempt %d of %d, retrying in %.2f s",
                what,
                exc,
                attempt,
                max_attempts,
                wait_s,
            )
            sleep(wait_s)
    raise AssertionError("unreachable")  # pragma: no cover
