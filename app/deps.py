"""Dependencies shared by the routes: the service, settings, API keys and paging limits."""

from __future__ import annotations

import hmac
from typing import Annotated, cast

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.jobs import IngestJobs
from app.problems import AuthError
from timbre.errors import InvalidRequestError
from timbre.search import SearchService
from timbre.settings import ApiSettings


def get_service(request: Request) -> SearchService:
    return cast(SearchService, request.app.state.service)


def get_api(request: Request) -> ApiSettings:
    return cast(ApiSettings, request.app.state.api)


def get_jobs(request: Request) -> IngestJobs:
    return cast(IngestJobs, request.app.state.jobs)


ServiceDep = Annotated[SearchService, Depends(get_service)]
ApiDep = Annotated[ApiSettings, Depends(get_api)]
JobsDep = Annotated[IngestJobs, Depends(get_jobs)]

# Security schemes, so OpenAPI knows how to send the key; the decision and its problem are ours.
_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="The API key (setting api.api_key)."
)
_BEARER = HTTPBearer(auto_error=False, description="The API key as a bearer token.")
KeyHeader = Annotated[str | None, Security(_KEY_HEADER)]
BearerToken = Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)]


def _check_key(
    api: ApiSettings, header: str | None, bearer: HTTPAuthorizationCredentials | None
) -> None:
    if api.api_key is None:
        return
    given = header or (bearer.credentials.strip() if bearer is not None else None)
    expected = api.api_key.get_secret_value()
    # Constant-time comparison: response timing must not reveal how much of a key matched.
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise AuthError("a valid API key is required (X-API-Key header or Authorization: Bearer)")


async def presented_key(
    request: Request,
) -> tuple[str | None, HTTPAuthorizationCredentials | None]:
    """The key a request presents, read as the routes read it (for a door outside the routes)."""
    return await _KEY_HEADER(request), await _BEARER(request)


def require_write(api: ApiDep, header: KeyHeader, bearer: BearerToken) -> None:
    _check_key(api, header, bearer)


def require_read(api: ApiDep, header: KeyHeader, bearer: BearerToken) -> None:
    if api.require_key_for_reads:
        _check_key(api, header, bearer)


def paging(api: ApiSettings, top_k: int | None, offset: int) -> tuple[int, int]:
    """Apply the defaults and the configured maxima; 422 naming the field otherwise."""
    k = api.default_top_k if top_k is None else top_k
    if k > api.max_top_k:
        raise InvalidRequestError(f"top_k: at most {api.max_top_k} results per query")
    if offset > api.max_offset:
        raise InvalidRequestError(f"offset: at most {api.max_offset}")
    return k, offset
