"""The MCP tests' shared service: ``timbre serve`` over the indexed MCP library."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.synthetic import Library
from tests.support.live import live_service
from timbre.settings import load_settings


@pytest.fixture(scope="module")
def url(mcp_library: Library, mcp_indexed_dir: Path, tiny_bundle: Path) -> Iterator[str]:
    """The URL of a live service on the indexed MCP library, one per test module."""
    settings = load_settings(
        data_dir=mcp_indexed_dir,
        models={"bundle": tiny_bundle, "threads": 2},
        api={"library_roots": [str(mcp_library.root)]},
    )
    with live_service(settings) as base:
        yield base
