"""Library routes: facet counts (what values exist) and near-duplicate reports."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from app.deps import ApiDep, ServiceDep, require_read
from app.openapi import JSON_PARAMETER, problems
from app.routes.common import as_request_error, filter_of
from app.schemas import DuplicatesOut, FacetsOut, FilterIn
from timbre.errors import InvalidRequestError
from timbre.search.duplicates import library_duplicates
from timbre.settings import ApiSettings
from timbre.store.facets import FACET_FIELDS

router = APIRouter(
    dependencies=[Depends(require_read)], tags=["library"], responses=problems(401, 422, 503)
)

FilterQuery = Annotated[
    str | None,
    Query(
        description='a search filter object as JSON, e.g. {"genre": "techno"}',
        json_schema_extra={JSON_PARAMETER: "FilterIn"},
    ),
]


def _filter(api: ApiSettings, text: str | None) -> Any:
    if text is None or not text.strip():
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(f"filter: not valid JSON ({exc.msg})") from exc
    try:
        return filter_of(api, FilterIn.model_validate(data))
    except ValidationError as exc:
        raise as_request_error(exc) from exc


@router.get("/v1/facets", response_model=FacetsOut, tags=["library"])
async def facets(
    service: ServiceDep,
    api: ApiDep,
    field: Annotated[
        list[str],
        Query(
            description=f"fields to count (all if none): {', '.join(FACET_FIELDS)}",
            json_schema_extra={"items": {"type": "string", "enum": list(FACET_FIELDS)}},
        ),
    ] = [],  # noqa: B006 -- FastAPI copies query defaults
    filter: FilterQuery = None,
    limit: Annotated[int | None, Query(ge=1, description="values per field")] = None,
) -> dict[str, Any]:
    """Values of library fields with their counts, most frequent first, under an optional filter."""
    search_filter = _filter(api, filter)
    return await run_in_threadpool(service.library.facets, field, filter=search_filter, limit=limit)


@router.get("/v1/duplicates", response_model=DuplicatesOut, tags=["library"])
async def duplicates(
    service: ServiceDep,
    api: ApiDep,
    min_cosine: Annotated[
        float | None, Query(gt=0.0, le=1.0, description="override the configured threshold")
    ] = None,
    filter: FilterQuery = None,
) -> dict[str, Any]:
    """Groups of near-duplicate samples and which one to keep (a report: nothing is deleted)."""
    search_filter = _filter(api, filter)
    store = await run_in_threadpool(service.library.store.get)
    report = await run_in_threadpool(
        lambda: library_duplicates(
            store.live(),
            service.library.limits.duplicate_rules,
            min_cosine=min_cosine,
            filter=search_filter,
        )
    )
    return report.as_dict()
