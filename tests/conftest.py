"""Shared fixtures: one tiny random-weight bundle per test session, and models loaded once."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from timbre.embedding.files import RandomWeightsWarning
from timbre.settings import Settings, load_settings

# The HTTP API tests' fixtures (one indexed library per session, shared by their modules).
pytest_plugins = ["tests.api_fixtures"]


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from timbre.embedding.random_bundle import write_random_bundle

    return write_random_bundle(tmp_path_factory.mktemp("bundle") / "tiny", "tiny", seed=0)


@pytest.fixture(scope="session")
def settings(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(
        data_dir=tmp_path_factory.mktemp("data"),
        models={"bundle": tiny_bundle, "threads": 2},
    )


@pytest.fixture(scope="session")
def audio_embedder(settings: Settings):  # type: ignore[no-untyped-def]
    from timbre.embedding.embedder import load_audio_embedder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        return load_audio_embedder(settings.models)


@pytest.fixture(scope="session")
def text_embedder(settings: Settings):  # type: ignore[no-untyped-def]
    from timbre.embedding.embedder import load_text_embedder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        return load_text_embedder(settings.models)


@pytest.fixture(scope="session")
def mcp_library(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A small synthetic library (20 files), shared by the MCP tests over HTTP and stdio."""
    from ingest.synthetic import make_library

    return make_library(
        tmp_path_factory.mktemp("mcp-lib") / "Samples",
        one_shots_per_pack=4,
        loops_per_pack=1,
        loop_bars=(1,),
        broken=False,
    )


@pytest.fixture(scope="session")
def mcp_indexed_dir(  # type: ignore[no-untyped-def]
    mcp_library, tiny_bundle: Path, audio_embedder, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A data dir with ``mcp_library`` indexed and its snapshot published."""
    from tests.ingest_helpers import ingest, job_settings

    data = tmp_path_factory.mktemp("mcp-data")
    ingest(job_settings(tiny_bundle, data), audio_embedder, [mcp_library.root])
    return data
