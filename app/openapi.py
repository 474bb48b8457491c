"""The OpenAPI document (documentation only: nothing at run time reads it): problem bodies,
optional security and the configured limits (``top_k``, ``offset``, batch size, filter values,
body sizes), written in from the settings.

A new route declares ``responses=problems(404, ...)`` for what it may answer besides its
router's (:data:`BODY_PROBLEMS` when it reads a body); security comes from ``require_read`` /
``require_write`` (app/deps.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from app.problems import PROBLEM_JSON
from app.schemas import Problem
from timbre.settings import ApiSettings

REF = "#/components/schemas/{model}"

JSON_PARAMETER = "x-json-content"
"""Put ``{JSON_PARAMETER: "Model"}`` in a query parameter's ``json_schema_extra`` when its text
is a JSON document of that model: the parameter is then declared as OpenAPI's
``content: application/json`` with the model's schema, which clients serialise as JSON."""

PROBLEM_DESCRIPTIONS = {
    400: "Malformed body: not UTF-8, not JSON, or nested too deeply.",
    401: "A valid API key is required (X-API-Key header or Authorization: Bearer).",
    403: "A path outside the configured library roots.",
    404: "No such item, job or file.",
    409: "Conflicts with work under way, or with the loaded models.",
    413: "The body is over its size limit.",
    415: "The body is not in a media type this route takes.",
    416: "The Range asks for bytes the file does not hold.",
    422: "Well-formed, but invalid: the problem names each field and what is wrong with it.",
    503: "A component needed to answer (models, vector store, snapshot) is not ready.",
    507: "Disk full: the data dir's disk cannot take the write (disk.min_free_bytes).",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for a route or router: the problem body for each status."""
    return {
        status: {"model": Problem, "description": PROBLEM_DESCRIPTIONS[status]}
        for status in statuses
    }


BODY_PROBLEMS = problems(400, 413, 415, 422)
"""What any route that reads a body can answer: malformed, too large, wrong media type, invalid."""


def build_openapi(
    app: FastAPI,
    api: ApiSettings,
    routers: Sequence[APIRouter],
    parameter_maxima: Mapping[tuple[str, str], int] | None = None,
) -> dict[str, Any]:
    """The app's OpenAPI document as this service is configured (cached on the app).
    ``parameter_maxima``: ``(path, query parameter)`` -> a maximum the route enforces."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for operation in (op for item in doc.get("paths", {}).values() for op in item.values()):
        _problem_media(operation)
        _body_limits(operation, api)
        _json_parameters(operation)
    _optional_security(routers, doc, api)
    for (path, name), maximum in (parameter_maxima or {}).items():
        for operation in doc.get("paths", {}).get(path, {}).values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == name:
                    _bound(parameter.get("schema", {}), "integer", "maximum", maximum)
    _limits(schemas, api)
    schemas.setdefault("Problem", Problem.model_json_schema(ref_template=REF))
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    app.openapi_schema = doc
    return doc


def _problem_media(operation: dict[str, Any]) -> None:
    """FastAPI declares every response model as application/json, and its own 422 body for
    routes with parameters; a problem is neither."""
    for status, response in operation.get("responses", {}).items():
        content = response.get("content") or {}
        if status[:1] in "45" and "application/json" in content:
            content[PROBLEM_JSON] = content.pop("application/json")
            content[PROBLEM_JSON]["schema"] = {"$ref": REF.format(model="Problem")}
            response["description"] = PROBLEM_DESCRIPTIONS.get(
                int(status), response.get("description", "")
            )


def _json_parameters(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        model = parameter.get("schema", {}).get(JSON_PARAMETER)
        if model is not None:
            del parameter["schema"]
            parameter["content"] = {
                "application/json": {"schema": {"$ref": REF.format(model=model)}}
            }


def _body_limits(operation: dict[str, Any], api: ApiSettings) -> None:
    body = operation.get("requestBody")
    if not body:
        return
    if "multipart/form-data" in body.get("content", {}):
        what, limit = "A multipart upload, file and fields, is", api.max_upload_bytes
    else:
        what, limit = "JSON bodies are", api.max_body_bytes
    body["description"] = f"{what} limited to {limit} bytes (413 past that)."
    body["x-max-body-bytes"] = limit


def _optional_security(routers: Sequence[APIRouter], doc: dict[str, Any], api: ApiSettings) -> None:
    """Declare the key as optional where this configuration does not ask for one."""
    from app.deps import require_read

    open_reads = api.api_key is None or not api.require_key_for_reads
    routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]
    for route in routes:
        reads = any(dep.call is require_read for dep in route.dependant.dependencies)
        if api.api_key is not None and not (reads and open_reads):
            continue
        item = doc.get("paths", {}).get(route.path_format, {})
        for method in route.methods or ():
            operation = item.get(method.lower())
            if operation is not None and "security" in operation:
                operation["security"].append({})
                operation.get("responses", {}).pop("401", None)


def _limits(schemas: dict[str, Any], api: ApiSettings) -> None:
    """The configured maxima, on every model that has the field they bound."""
    maxima = {"top_k": api.max_top_k, "offset": api.max_offset}
    for name, schema in schemas.items():
        properties = schema.get("properties", {})
        for field, maximum in maxima.items():
            if field in properties:
                _bound(properties[field], "integer", "maximum", maximum)
        if name == "BatchSearchIn" and "queries" in properties:
            properties["queries"]["maxItems"] = api.max_batch
        if name == "FilterIn":
            for prop in properties.values():
                _bound(prop, "array", "maxItems", api.max_filter_values)


def _bound(schema: dict[str, Any], kind: str, key: str, value: int) -> None:
    """Set ``key`` on the schema and on its anyOf/oneOf branches whose type is ``kind``."""
    for branch in [schema, *schema.get("anyOf", []), *schema.get("oneOf", [])]:
        if branch.get("type") == kind:
            branch[key] = value
