"""The MCP server: tools, resources and a prompt over one :class:`~app.mcp.backends.Backend`.

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
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, unquote

import anyio.to_thread
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, ValidationError

from app.mcp.backends import Backend, ProblemError
from app.problems import AuthError, Problem, detail_of, field_errors, status_of
from app.schemas import FacetsOut, HitOut, TextSearchIn
from app.schemas.collections import CollectionOut, CollectionsOut
from app.schemas.kits import BuildKitIn, BuildKitOut
from app.schemas.mcp import (
    AddToCollectionIn,
    CollectionBriefOut,
    CollectionIn,
    NoArgs,
    OverviewIn,
    PaletteIn,
    PaletteOut,
    SampleIn,
    SamplesOut,
    SimilarIn,
)
from app.schemas.recommend import RecommendIn
from timbre import __version__
from timbre.errors import TimbreError

log = logging.getLogger("timbre.mcp")

M = TypeVar("M", bound=BaseModel)

BackendFor = Callable[[ServerRequestContext[Any]], AbstractContextManager[Backend]]
"""The backend that answers one request (e.g. one whose audio URLs name the request's host),
held for as long as the request runs (so a backend can tell when it is idle)."""

WriteGuard = Callable[[ServerRequestContext[Any]], Awaitable[None]]
"""Raises when the request may not write (e.g. no valid API key on the HTTP door)."""

OVERVIEW_FIELDS = ("pack", "genre", "category", "instrument", "kind", "key")

INSTRUCTIONS = (
    "Timbre searches the user's own audio sample library by sound. Start with "
    "library_overview to learn its packs, genres, categories, instruments and keys; fill a "
    "palette with build_palette (one call, every slot with its own instrument and kind, "
    "distinct samples, a shared context filter); refine one slot with similar_samples; show "
    "results by name with their path (to load in a DAW) or audio_url (to play); save picks "
    "with add_to_collection. Each hit says where its instrument, key and bpm came from "
    "(*_source: tags, name or audio). When the user names the track's tempo or key, pass it "
    "as context ({bpm: 124, key: 'Am'}): every hit then carries fit, saying whether it fits "
    "and why (the stretch it needs, its key's relation to the track's), to explain a pick."
)

FIT_HELP = (
    " With context {bpm, key} (the track's tempo and key; sort 'fit' puts fitting samples "
    "first, only_fitting drops the rest), each hit carries fit: fits is true when it needs at "
    "most tolerance_pct (default 8) of time-stretch, half and double time counting, "
    "(stretch_pct, tempo_multiple) and its key is the track's, its relative or a fifth away "
    "(key_relation, with semitones to transpose it); one-shots and keyless drums are never "
    "held back by what they lack; fit.audio_url plays it matched to the track."
)
"""What ``fit`` means, for the tools that take a project context."""


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its name, words, input and output models, and what it does."""

    name: str
    title: str
    description: str
    input: type[BaseModel]
    output: type[BaseModel]
    run: Callable[[Backend, Any], BaseModel]
    writes: bool = False

    def describe(self) -> types.Tool:
        return types.Tool(
            name=self.name,
            title=self.title,
            description=self.description,
            input_schema=self.input.model_json_schema(),
            output_schema=self.output.model_json_schema(),
            annotations=types.ToolAnnotations(
                read_only_hint=not self.writes,
                destructive_hint=False,
                idempotent_hint=True,
                open_world_hint=False,
            ),
        )


def _similar(backend: Backend, args: SimilarIn) -> SamplesOut:
    request = args.to_http()
    if isinstance(request, RecommendIn):
        return SamplesOut.of(backend.recommend(request))
    return SamplesOut.of(backend.search_audio(request))


def _overview(backend: Backend, args: OverviewIn) -> FacetsOut:
    return backend.facets(OVERVIEW_FIELDS, args.filter)


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "search_samples",
        "Search samples",
        "Find samples that sound like a description, e.g. 'punchy techno kick'. Filter by "
        "genre, instrument, kind, key, pack, tags, bpm ('120-128') or duration_s." + FIT_HELP,
        TextSearchIn,
        SamplesOut,
        lambda b, a: SamplesOut.of(b.search_text(a)),
    ),
    ToolSpec(
        "similar_samples",
        "Similar samples",
        "Find samples that sound like an indexed one (by id); with a query, steer by text "
        "(alpha = weight of the text). Steer away from samples the user rejected (unlike: "
        "their ids) and from words (avoid, or '-word' in the query, e.g. 'darker -noise')."
        + FIT_HELP,
        SimilarIn,
        SamplesOut,
        _similar,
    ),
    ToolSpec(
        "build_palette",
        "Build a palette",
        "Fill every slot of a palette in one call: one query per slot with its own filter "
        "(set its instrument and kind), a shared context filter ANDed with each slot's own "
        "(a context bpm range applies to loops: one-shots pass it), and no sample in two "
        "slots when distinct. A single bpm number and a single key in the context are the "
        "track's tempo and key, not filters: every hit carries fit and each slot puts the "
        "samples that fit first (fits: within 8 % of time-stretch, half and double time "
        "counting, and a key that is the track's, its relative or a fifth away; stretch_pct, "
        "key_relation and semitones say why; fit.audio_url plays it matched). A slot named "
        "after an instrument the library holds is filtered on it unless a filter sets one; an "
        "empty slot says which filter emptied it.",
        PaletteIn,
        PaletteOut,
        lambda b, a: PaletteOut.of(a, b.search_batch(a.to_http())),
    ),
    ToolSpec(
        "get_sample",
        "Get a sample",
        "Everything known about one sample: all its paths, metadata, duration and audio URL.",
        SampleIn,
        HitOut,
        lambda b, a: b.item(a.id),
    ),
    ToolSpec(
        "library_overview",
        "Library overview",
        "What the library holds: packs, genres, categories, instruments, kinds and keys with "
        "their sample counts, and the total.",
        OverviewIn,
        FacetsOut,
        _overview,
    ),
    ToolSpec(
        "list_collections",
        "List collections",
        "The user's collections (favourites first) with their sizes.",
        NoArgs,
        CollectionsOut,
        lambda b, a: b.collections(),
    ),
    ToolSpec(
        "list_collection",
        "List a collection",
        "The samples of one collection (favourites by default), oldest first.",
        CollectionIn,
        CollectionBriefOut,
        lambda b, a: CollectionBriefOut.of(b.collection(a.collection)),
    ),
    ToolSpec(
        "add_to_collection",
        "Add to a collection",
        "Save samples (by id) to a collection, favourites by default; a new name creates it.",
        AddToCollectionIn,
        CollectionOut,
        lambda b, a: b.add_to_collection(a.collection, a.ids),
        writes=True,
    ),
    ToolSpec(
        "build_kit",
        "Build a drum kit",
        "Fill 8 or 16 sampler pads (pad n plays MIDI note 35 + n, pad 1 = 36) with distinct "
        "samples, one per slot label (default: kick, snare, closed hat, open hat, clap, perc, "
        "tom, crash for 8). Drum slots take one-shots first. With a context {bpm, key}, "
        "samples that fit the project are preferred and each pad says how it fits (fit: "
        "stretch_pct, key_relation, semitones) or, in its note, that nothing fitting was "
        "found. Give a name to save the kit (the user can then edit and export it).",
        BuildKitIn,
        BuildKitOut,
        lambda b, a: BuildKitOut.of(b.build_kit(a)),
        writes=True,
    ),
)

COLLECTIONS_URI = "timbre://collections"
COLLECTION_TEMPLATE = "timbre://collections/{name}"
SAMPLE_TEMPLATE = "timbre://samples/{id}"

PALETTE_PROMPT = types.Prompt(
    name="build_palette",
    title="Build a palette for …",
    description="Find a sample for every part of a track idea, from the user's own library.",
    arguments=[
        types.PromptArgument(
            name="brief", description="e.g. 'warm melodic techno at 124 BPM'", required=True
        ),
        types.PromptArgument(
            name="slots", description="e.g. 'kick, bass, pad, hat' (else you decide)"
        ),
    ],
)


def palette_prompt(brief: str, slots: str | None) -> str:
    parts = (
        f"the slots {slots}"
        if slots
        else "the parts such a track needs (usually 4-8: kick, bass, a lead or pad, percussion…)"
    )
    return (
        f"Build a sample palette for: {brief}.\n\n"
        "1. Call library_overview to see which genres, packs, instruments and keys the library "
        "holds, so the filters you use exist.\n"
        f"2. Decide {parts}, and one short sound description per slot.\n"
        "3. Call build_palette once with every slot and distinct=true. Give each slot its own "
        "filter: its instrument as library_overview spells it (kick, snare, hat, bass…) and its "
        "kind (one_shot for single hits, loop for patterns). Put in the context what the whole "
        "brief fixes: genre, and the track's tempo and key as a single bpm number and a single "
        "key (e.g. bpm 124, key 'Am'): they rank the samples that fit first in every slot and "
        "each hit says how it fits (fit). A bpm range 'MIN-MAX' or a list of keys filters "
        "instead (a range applies to loops; one-shots have no tempo and pass it).\n"
        "4. A slot that comes back empty says why in its 'empty' field: the filter that emptied "
        "it and how many samples match without it. Loosen that filter and call again.\n"
        "5. For a slot whose hits do not suit, call similar_samples with the best hit's id, "
        "a query saying what to change (e.g. 'darker') and the track's bpm and key as its "
        "context, or search_samples with new words.\n"
        "6. Show the picks as a list: slot, name, pack, BPM, key, how it fits the track (from "
        "fit: the stretch it needs, its key's relation and transposition) and the path to load "
        "it (or the audio_url to play it; fit.audio_url plays it matched to the track). Say "
        "where a fact came from when it matters (the *_source fields: tags, name or audio).\n"
        "7. When the user keeps some, call add_to_collection with their ids."
    )


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
