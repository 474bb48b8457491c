"""Schemathesis over the app's own OpenAPI document, in-process through ASGI, bounded in work.

The real app (tiny random-weight models, the indexed test library, an API key for writes)
answers every phase schemathesis runs: explicit examples, boundary coverage, random fuzzing
(valid and invalid requests) and stateful sequences. Every default check must pass: no 5xx,
responses and their status codes, media types and headers as documented, schema-valid
requests accepted and schema-violating ones refused.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import schemathesis
import soundfile as sf
from fastapi.testclient import TestClient
from hypothesis import strategies as st
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.engine import events, from_schema
from schemathesis.engine.statistic import Statistic
from starlette.types import ASGIApp, Receive, Scope, Send

from ingest.synthetic import Library
from tests.support.api_fixtures import api_settings, copy_of, opened
from timbre.collections_db import DEVICE_NAME

KEY = "fuzz-key"
MAX_EXAMPLES = 10
"""Generated requests per operation and phase: the work is fixed, so a loaded machine runs the
same test more slowly instead of a shorter one (a time bound gave 86 cases under load)."""
MAX_TIME_S = 240
"""Only a safety net against a runaway run; a quiet run ends long before it."""
SEED = 20261110


@st.composite
def audio_files(draw: st.DrawFn) -> bytes:
    """A short WAV or FLAC file: what the upload's ``file`` part is documented to hold."""
    rate = draw(st.sampled_from([8000, 22050, 24000, 44100, 48000]))
    seconds = draw(st.floats(min_value=0.05, max_value=0.5))
    channels = draw(st.integers(min_value=1, max_value=2))
    frequency = draw(st.floats(min_value=40, max_value=8000))
    t = np.arange(int(rate * seconds)) / rate
    samples = np.repeat((0.5 * np.sin(2 * np.pi * frequency * t))[:, None], channels, axis=1)
    buffer = io.BytesIO()
    kind = draw(st.sampled_from(["WAV", "FLAC"]))
    sf.write(buffer, samples.astype(np.float32), rate, format=kind, subtype="PCM_16")
    return buffer.getvalue()


def _reversed_ranges(value: Any) -> bool:
    """A range whose lower bound passes its upper one, anywhere in a body."""
    if isinstance(value, list):
        return any(_reversed_ranges(v) for v in value)
    if not isinstance(value, dict):
        return False
    for name in ("bpm", "duration_s"):
        bounds = value.get(name)
        if isinstance(bounds, dict):
            low = next((bounds[k] for k in ("gt", "min", "gte") if k in bounds), None)
            high = next((bounds[k] for k in ("lt", "max", "lte") if k in bounds), None)
            numbers = all(
                isinstance(b, int | float) and not isinstance(b, bool) for b in (low, high)
            )
            if numbers and (low > high or (low == high and ("gt" in bounds or "lt" in bounds))):
                return True
        if isinstance(bounds, str) and "-" in bounds:
            low_text, _, high_text = bounds.strip().partition("-")
            try:
                if float(low_text) > float(high_text):
                    return True
            except ValueError:
                pass
    return any(_reversed_ranges(v) for v in value.values())


def _json_or_none(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return None


def _refused_for_a_reason_the_schema_cannot_state(case: Any) -> bool:
    """A case that is schema-valid yet rightly refused, by the API's own rules.

    - A range whose lower bound passes its upper one, in a body or in a ``filter`` query
      parameter: JSON Schema cannot compare two values (test_api_hardening checks the 422).
    - An ingest ``shard`` ``[I, N]`` with ``I >= N``: the schema bounds each number alone.
    - An upload whose ``query`` part is empty: schemathesis 4.32's coverage and stateful phases
      send ``""`` for a multipart text field as a *valid* value although the form schema says
      ``minLength: 1`` (test_api_hardening checks the 422).
    - A new collection named as a Windows device (``CON``, ``nul.txt``): the pattern would need
      a lookahead (test_collection_names checks the 422).
    - A query or a kit's slot label that the steering rules refuse (:mod:`timbre.search.steer`):
      only ``-word`` tokens, an id both positive and negative, more examples in all than the limit
      (test_api_recommend checks each 422).
    """
    body = case.body
    if _steering_refuses(body, recommend=str(case.path).endswith("/recommend")):
        return True
    query = case.query or {}
    names = [(case.path_parameters or {}).get("name")]
    names.append(body.get("name") if isinstance(body, dict) else None)
    if any(isinstance(n, str) and DEVICE_NAME.fullmatch(n.strip()) for n in names):
        return True
    if _reversed_ranges(body) or _reversed_ranges(_json_or_none(query.get("filter"))):
        return True
    shard = body.get("shard") if isinstance(body, dict) else None
    numbers = isinstance(shard, list) and all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in shard
    )
    if numbers and len(shard) == 2 and shard[0] >= shard[1]:
        return True
    multipart = (case.media_type or "").startswith("multipart/")
    return multipart and isinstance(body, dict) and body.get("query") == ""


def _steering_refuses(value: Any, *, recommend: bool) -> bool:
    """Whether the steering rules refuse a recommend body or a text query in ``value``."""
    from timbre.errors import InvalidRequestError
    from timbre.search.steer import Steering, check_steering, parse_text

    if isinstance(value, list):
        return any(_steering_refuses(v, recommend=False) for v in value)
    if not isinstance(value, dict):
        return False
    query = value.get("query")
    lists = [value.get(k) for k in ("positive", "negative", "avoid")]
    try:
        if recommend and all(isinstance(x, list | None) for x in lists):
            ids = [tuple(x or ()) for x in lists]
            check_steering(Steering(ids[0], ids[1], query, ids[2]))
        elif isinstance(query, str):
            parse_text(query)
        # a kit's slot labels are searched as text, by the same rule
        slots = value.get("slots")
        for label in [value.get("slot"), *(slots if isinstance(slots, list) else [])]:
            if isinstance(label, str):
                parse_text(label)
    except InvalidRequestError:
        return True
    return any(_steering_refuses(v, recommend=False) for v in value.values())


def _text_part_given_json(failure: Any, case: Any) -> bool:
    """A multipart field that schemathesis filled with another type and calls
    schema-violating: every part is text, so a text field (``query``, an ``avoid`` word) given a
    number or an object carries its text, a valid string; and a list in any field goes as
    repeated parts (none when empty), which reach the route as one value or as the field left
    out (its default)."""
    multipart = (case.media_type or "").startswith("multipart/")
    message = str(getattr(failure, "message", ""))
    typed = "(was string, became " in message or "became array)" in message
    return multipart and typed and isinstance(failure, AcceptedNegativeData)


def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure except a 422 for a case the schema cannot call invalid (above),
    and a multipart text field schemathesis believes is not text."""
    if _text_part_given_json(failure, case):
        return False
    return not (response.status_code == 422 and _refused_for_a_reason_the_schema_cannot_state(case))


class _AlreadyStarted:
    """The app as schemathesis calls it: the TestClient has run its startup already, so the
    lifespan schemathesis sends is answered without running it a second time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return


@pytest.fixture(scope="module")
def fuzz_client(
    library: Library, indexed_dir: Path, tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    data = copy_of(indexed_dir, tmp_path_factory.mktemp("fuzz"))
    with opened(api_settings(tiny_bundle, data, library, api_key=KEY)) as c:
        yield c


def test_the_api_honours_its_own_openapi_document(fuzz_client: TestClient) -> None:
    schemathesis.openapi.media_type("audio/wav", audio_files(), aliases=["audio/flac"])
    schema = schemathesis.openapi.from_asgi("/openapi.json", _AlreadyStarted(fuzz_client.app))
    schema.config.update(headers={"X-API-Key": KEY})
    schema.config.max_time = MAX_TIME_S
    schema.config.generation.update(max_examples=MAX_EXAMPLES)
    schema.config.seed = SEED
    schema.hook(filter_failure)

    statistic = Statistic()
    errors: list[str] = []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished) and event.is_test_scenario:
            statistic.on_scenario_finished(event.recorder)
        elif isinstance(event, events.NonFatalError | events.FatalError):
            errors.append(f"{event.__class__.__name__}: {getattr(event, 'label', '')} {event}")

    failures = [
        f"{label}: {failure.title}: {failure.message}\n"
        f"  request: {(group.code_sample or '')[:400]}\n"
        f"  answer: {group.response.content[:400] if group.response else None!r}"
        for label, groups in statistic.failures.items()
        for group in groups.values()
        for failure in group.failures
    ]
    assert len(statistic.tested_operations) >= 12, statistic.tested_operations
    assert statistic.total_cases >= 10 * len(statistic.tested_operations), (
        f"only {statistic.total_cases} cases: the run was too short to mean anything"
    )
    assert not errors, "\n".join(errors[:5])
    assert not failures, f"{len(failures)} distinct failures:\n" + "\n".join(failures[:10])
