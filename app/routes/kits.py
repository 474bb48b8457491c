"""Kits of 8 or 16 pads: create and fill, edit a pad, swap, lock, and export for a sampler."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.deps import require_read, require_write
from app.openapi import BODY_PROBLEMS, problems
from app.routes.collections import strict_path
from app.routes.common import AudioUrl, audio_url, from_state, hit_out
from app.schemas.collections import NAME_MAX_CHARS, NAME_PATTERN
from app.schemas.fit import ProjectIn
from app.schemas.kits import (
    KitContextOut,
    KitIn,
    KitOut,
    KitPreviewIn,
    KitsOut,
    KitSummaryOut,
    LockIn,
    PadIn,
    PadOut,
)
from timbre.fit import ProjectContext
from timbre.search.fitting import FitQuery
from timbre.search.kit_export import ExportFormat, KitExporter
from timbre.search.kit_slots import context_of
from timbre.search.kits import KitsService, KitView

read = APIRouter(
    dependencies=[Depends(strict_path), Depends(require_read)],
    tags=["kits"],
    responses=problems(401, 404, 422, 503),
)
write = APIRouter(
    dependencies=[Depends(strict_path), Depends(require_write)],
    tags=["kits"],
    responses={**BODY_PROBLEMS, **problems(401, 404, 409, 503, 507)},
)

KitsDep = Annotated[KitsService, Depends(from_state("kits", "kits are"))]
ExporterDep = Annotated[KitExporter, Depends(from_state("kit_export", "kit exports are"))]
KitName = Annotated[str, Path(max_length=NAME_MAX_CHARS, pattern=NAME_PATTERN, description="a kit")]
PadIndex = Annotated[int, Path(ge=1, le=16, description="a pad, from 1")]


def kit_out(url: AudioUrl, view: KitView) -> KitOut:
    """The API's form of a kit (used by the MCP backend too)."""
    project = context_of(view.context)  # each pad says how it fits the kit's, as a hit would
    fit = None if project is None else FitQuery(project)
    pads = []
    for p in view.pads:
        pad = p.pad
        hit = None
        if pad.id is not None and p.payload is not None:
            hit = hit_out(url, None, pad.id, p.payload, fit)
            hit.score = p.score
        pads.append(
            PadOut(
                index=pad.index,
                midi_note=p.midi_note,
                slot=pad.slot,
                id=pad.id,
                locked=pad.locked,
                missing=p.missing,
                hit=hit,
                fit=hit.fit if hit is not None else None,
                note=pad.note,
                path_hint=pad.path_hint,
            )
        )
    info = view.info
    return KitOut(
        name=view.name,
        size=view.size,
        pads=pads,
        context=KitContextOut.model_validate(view.context) if view.context else None,
        created_at=info.created_at if info else None,
        updated_at=info.updated_at if info else None,
    )


def _out(request: Request, view: KitView) -> KitOut:
    return kit_out(audio_url(request), view)


@read.get("/v1/kits", response_model=KitsOut)
async def list_kits(kits: KitsDep) -> KitsOut:
    """Every kit with its size and filled pads, by name."""
    infos = await run_in_threadpool(kits.list_all)
    return KitsOut(kits=[KitSummaryOut.model_validate(i, from_attributes=True) for i in infos])


def project_of(kits: KitsService, context: ProjectIn | None) -> tuple[ProjectContext | None, bool]:
    """A kit request's project (the settings' tolerance by default) and its only_fitting."""
    if context is None:
        return None, False
    fit = context.query(kits.library.limits.tempo_tolerance_pct)
    return fit.project, fit.only_fitting


def create(kits: KitsService, body: KitIn) -> KitView:
    context, only = project_of(kits, body.context)
    return kits.create(body.name, body.pads, body.slots, context, only_fitting=only, fill=body.fill)


def preview(kits: KitsService, body: KitPreviewIn) -> KitView:
    context, only = project_of(kits, body.context)
    return kits.preview(body.pads, body.slots, context, only_fitting=only)


@write.post("/v1/kits", response_model=KitOut, status_code=201)
async def create_kit(body: KitIn, request: Request, kits: KitsDep) -> KitOut:
    """Create a kit and fill its pads with distinct samples, fitting the project first (409 if
    the name is taken, in any case)."""
    return _out(request, await run_in_threadpool(create, kits, body))


@read.post("/v1/search/kit", response_model=KitOut, responses=BODY_PROBLEMS)
async def preview_kit(body: KitPreviewIn, request: Request, kits: KitsDep) -> KitOut:
    """Fill a kit as ``POST /v1/kits`` would, without saving it."""
    return _out(request, await run_in_threadpool(preview, kits, body))


@read.get("/v1/kits/{name}", response_model=KitOut)
async def get_kit(name: KitName, request: Request, kits: KitsDep) -> KitOut:
    """A kit and its pads (a pad whose sample left the index or whose file is gone: missing)."""
    return _out(request, await run_in_threadpool(kits.get, name))


@write.delete("/v1/kits/{name}", status_code=204)
async def delete_kit(name: KitName, kits: KitsDep) -> Response:
    await run_in_threadpool(kits.delete, name)
    return Response(status_code=204)


@write.put("/v1/kits/{name}/context", response_model=KitOut)
async def set_kit_context(
    name: KitName, body: ProjectIn, request: Request, kits: KitsDep
) -> KitOut:
    """Move a kit to the project's new tempo and key: the pads keep their samples, and each
    says how it fits the new project; fill, swap and the matched export follow it."""
    context, only = project_of(kits, body)
    view = await run_in_threadpool(lambda: kits.set_context(name, context, only_fitting=only))
    return _out(request, view)


@write.delete("/v1/kits/{name}/context", response_model=KitOut)
async def clear_kit_context(name: KitName, request: Request, kits: KitsDep) -> KitOut:
    """Take the project off a kit (its pads stay; no fits, no matched export)."""
    return _out(request, await run_in_threadpool(lambda: kits.set_context(name, None)))


@write.put("/v1/kits/{name}/pads/{index}", response_model=KitOut)
async def set_pad(
    name: KitName, index: PadIndex, body: PadIn, request: Request, kits: KitsDep
) -> KitOut:
    """Put a sample on a pad (409 if it is on another pad, or the pad is locked) and/or
    change its slot label."""
    view = await run_in_threadpool(
        lambda: kits.set_pad(name, index, item_id=body.id, slot=body.slot)
    )
    return _out(request, view)


@write.delete("/v1/kits/{name}/pads/{index}", response_model=KitOut)
async def clear_pad(name: KitName, index: PadIndex, request: Request, kits: KitsDep) -> KitOut:
    """Empty a pad (409 if locked)."""
    return _out(request, await run_in_threadpool(kits.clear_pad, name, index))


@write.post("/v1/kits/{name}/pads/{index}/swap", response_model=KitOut)
async def swap_pad(name: KitName, index: PadIndex, request: Request, kits: KitsDep) -> KitOut:
    """Swap a pad's sample for the one most like it that fits, not on another pad and not
    swapped away from this one before (409 if locked)."""
    return _out(request, await run_in_threadpool(kits.swap, name, index))


@write.post("/v1/kits/{name}/pads/{index}/lock", response_model=KitOut)
async def lock_pad(
    name: KitName, index: PadIndex, body: LockIn, request: Request, kits: KitsDep
) -> KitOut:
    """Lock a pad (fill and swap-all keep it) or unlock it."""
    return _out(request, await run_in_threadpool(kits.lock_pad, name, index, body.locked))


@write.post("/v1/kits/{name}/fill", response_model=KitOut)
async def fill_kit(name: KitName, request: Request, kits: KitsDep) -> KitOut:
    """Fill the empty, unlocked pads."""
    return _out(request, await run_in_threadpool(kits.fill, name))


@write.post("/v1/kits/{name}/swap", response_model=KitOut)
async def swap_all(name: KitName, request: Request, kits: KitsDep) -> KitOut:
    """Swap every unlocked pad for its neighbour (empty ones are filled); locked pads stay."""
    return _out(request, await run_in_threadpool(kits.swap_all, name))


@read.get(
    "/v1/kits/{name}/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}}, **problems(409)},
)
async def export_kit(
    name: KitName,
    exporter: ExporterDep,
    format: Annotated[ExportFormat, Query(description="sfz, decentsampler or hardware")] = "sfz",
    matched: Annotated[
        bool, Query(description="the renditions at the project's tempo and key")
    ] = False,
    mono: Annotated[bool, Query(description="mix every sample down to mono")] = False,
) -> StreamingResponse:
    """A zip for a sampler: pad n on MIDI note 35 + n; what could not be included is listed in
    MISSING.txt (and counted in ``X-Timbre-Missing``). 409 for a kit with no samples, or a
    matched export of a kit without a project context."""
    plan = await run_in_threadpool(lambda: exporter.plan(name, format, matched=matched, mono=mono))
    filename = f"{plan.folder}-{format}.zip"
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    return StreamingResponse(
        exporter.zip(plan),
        media_type="application/zip",
        headers={"Content-Disposition": disposition, "X-Timbre-Missing": str(len(plan.missing))},
    )
