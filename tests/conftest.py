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
