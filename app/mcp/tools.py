"""What the MCP server offers an assistant, in words: the instructions, every tool (its name,
description, input and output models, and what it calls on the backend) and the palette
prompt. :mod:`app.mcp.server` serves them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from pydantic import BaseModel

from app.mcp.backends import Backend
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
