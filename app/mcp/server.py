"""The MCP server: the tools and prompt of :mod:`app.mcp.tools`, and resources, over one
:class:`~app.mcp.backends.Backend`.

On the SDK's low-level :class:`mcp.server.Server`, not ``MCPServer`` (which validates
arguments itself and words its own errors): each tool's input is validated against its
pydantic model, the schema ``tools/list`` advertises, and a failure becomes a tool result with
``isError`` and the HTTP API's problem ``detail``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar
from urllib.parse import quote, unquote

import anyio.to_thread
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, ValidationError

from app.mcp.backends import Backend, ProblemError
from app.mcp.tools import INSTRUCTIONS, PALETTE_PROMPT, TOOLS, palette_prompt
from app.problems import AuthError, Problem, detail_of, field_errors, status_of
from app.schemas.mcp import CollectionBriefOut
from timbre import __version__
from timbre.errors import TimbreError

log = logging.getLogger("timbre.mcp")

M = TypeVar("M", bound=BaseModel)

BackendFor = Callable[[ServerRequestContext[Any]], AbstractContextManager[Backend]]
"""The backend that answers one request (e.g. one whose audio URLs name the request's host),
held for as long as the request runs (so a backend can tell when it is idle)."""

WriteGuard = Callable[[ServerRequestContext[Any]], Awaitable[None]]
"""Raises when the request may not write (e.g. no valid API key on the HTTP door)."""

COLLECTIONS_URI = "timbre://collections"
COLLECTION_TEMPLATE = "timbre://collections/{name}"
SAMPLE_TEMPLATE = "timbre://samples/{id}"

UNEXPECTED = "an unexpected error occurred; it has been logged"


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


def _text(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def build_server(backend_for: BackendFor, *, guard_write: WriteGuard | None = None) -> Server[Any]:
    """The MCP server, answering through ``backend_for(ctx)``; ``guard_write`` is checked
    before every tool that writes (the HTTP door's key rule)."""
    tools = {t.name: t for t in TOOLS}

    def answer(ctx: ServerRequestContext[Any], work: Callable[[Backend], M]) -> M:
        with backend_for(ctx) as backend:
            return work(backend)

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[t.describe() for t in TOOLS])

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        spec = tools.get(params.name)
        if spec is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"unknown tool {params.name!r}")
        try:
            if spec.writes and guard_write is not None:
                await guard_write(ctx)
            args = spec.input.model_validate(params.arguments or {})
            out = await anyio.to_thread.run_sync(answer, ctx, lambda b: spec.run(b, args))
        except Exception as exc:
            found = problem_of(exc)
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=found.detail)],
                is_error=True,
                _meta={"timbre/problem": found.model_dump(exclude_none=True)},
            )
        data = out.model_dump(mode="json")
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=_text(data))], structured_content=data
        )

    async def list_resources(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        index = types.Resource(
            uri=COLLECTIONS_URI,
            name="collections",
            title="Collections",
            description="The user's collections and favourites, with their sizes.",
            mime_type="application/json",
        )
        try:
            known = await anyio.to_thread.run_sync(answer, ctx, lambda b: b.collections())
        except Exception as exc:
            raise _resource_error(exc) from exc
        return types.ListResourcesResult(
            resources=[
                index,
                *(
                    types.Resource(
                        uri=f"timbre://collections/{quote(c.name, safe='')}",
                        name=c.name,
                        description=f"{c.count} samples",
                        mime_type="application/json",
                    )
                    for c in known.collections
                ),
            ]
        )

    async def list_templates(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(
            resource_templates=[
                types.ResourceTemplate(
                    uri_template=SAMPLE_TEMPLATE,
                    name="sample",
                    description="One sample's metadata, paths and audio URL.",
                    mime_type="application/json",
                ),
                types.ResourceTemplate(
                    uri_template=COLLECTION_TEMPLATE,
                    name="collection",
                    description="The samples of one collection.",
                    mime_type="application/json",
                ),
            ]
        )

    def read(backend: Backend, uri: str) -> BaseModel:
        if uri == COLLECTIONS_URI:
            return backend.collections()
        for prefix, fetch in (
            ("timbre://collections/", lambda v: CollectionBriefOut.of(backend.collection(v))),
            ("timbre://samples/", backend.item),
        ):
            if uri.startswith(prefix) and uri != prefix:
                return fetch(unquote(uri[len(prefix) :]))
        raise MCPError(code=types.INVALID_PARAMS, message=f"no resource {uri}")

    async def read_resource(
        ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        try:
            out = await anyio.to_thread.run_sync(answer, ctx, lambda b: read(b, uri))
        except MCPError:
            raise
        except Exception as exc:
            raise _resource_error(exc) from exc
        return types.ReadResourceResult(
            contents=[
                types.TextResourceContents(
                    uri=uri, text=_text(out.model_dump(mode="json")), mime_type="application/json"
                )
            ]
        )

    async def list_prompts(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[PALETTE_PROMPT])

    async def get_prompt(
        ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        if params.name != PALETTE_PROMPT.name:
            raise MCPError(code=types.INVALID_PARAMS, message=f"unknown prompt {params.name!r}")
        arguments = params.arguments or {}
        brief = (arguments.get("brief") or "").strip()
        if not brief:
            raise MCPError(code=types.INVALID_PARAMS, message="brief: describe the track idea")
        text = palette_prompt(brief, (arguments.get("slots") or "").strip() or None)
        return types.GetPromptResult(
            description=PALETTE_PROMPT.description,
            messages=[
                types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))
            ],
        )

    return Server(
        "timbre",
        version=__version__,
        title="Timbre",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
    )


def _resource_error(exc: BaseException) -> MCPError:
    found = problem_of(exc)
    code = types.INVALID_PARAMS if found.status in (404, 422) else types.INTERNAL_ERROR
    return MCPError(code=code, message=found.detail, data=found.model_dump(exclude_none=True))
