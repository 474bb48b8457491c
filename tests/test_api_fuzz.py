"""Schemathesis over the app's own OpenAPI, in-process through ASGI (exploratory draft)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.python.asgi import ASGIClient

from ingest.synthetic import Library
from tests.api_fixtures import api_settings, copy_of, opened

pytestmark = pytest.mark.filterwarnings("ignore::timbre.embedding.files.RandomWeightsWarning")

KEY = "fuzz-key"


@pytest.fixture(scope="module")
def fuzz_client(
    library: Library, indexed_dir: Path, tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    data = copy_of(indexed_dir, tmp_path_factory.mktemp("fuzz"))
    with opened(api_settings(tiny_bundle, data, library, api_key=KEY)) as c:
        yield c


@pytest.fixture(scope="module")
def api_schema(fuzz_client: TestClient):  # type: ignore[no-untyped-def]
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_client.app)
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, fuzz_client: TestClient) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate(session=ASGIClient(fuzz_client.app), headers={"X-API-Key": KEY})
