"""Shared fixtures: one tiny random-weight bundle per test session, and models loaded once.

The ONNX exports of that bundle are made once per session, into one folder that every test
(and every child process, through the environment) shares: an export takes seconds, a load
from the cache milliseconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from timbre.settings import Settings, load_settings

# The HTTP API tests' fixtures (one indexed library per session, shared by their modules).
pytest_plugins = ["tests.support.api_fixtures"]
EXPORT_DIR_ENV = "TIMBRE_MODELS__EXPORT_DIR"
"""Child processes that clear TIMBRE_* variables keep this one (see ``keep_export_dir``)."""


def keep_export_dir(env: dict[str, str]) -> dict[str, str]:
    """``env`` plus the session's export folder, so a child process reuses its exports."""
    return {**env, EXPORT_DIR_ENV: os.environ[EXPORT_DIR_ENV]}


@pytest.fixture(scope="session", autouse=True)
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("onnx-exports")
    before = os.environ.get(EXPORT_DIR_ENV)
    os.environ[EXPORT_DIR_ENV] = str(folder)
    yield folder
    if before is None:
        os.environ.pop(EXPORT_DIR_ENV, None)
    else:
        os.environ[EXPORT_DIR_ENV] = before


TEST_HOST = "testserver"
"""The Host Starlette's TestClient sends: an allowed host name of every app the tests build
(``api.allowed_hosts``, through the environment like any deployment's setting)."""


@pytest.fixture(scope="session", autouse=True)
def allow_test_host() -> Iterator[None]:
    name = "TIMBRE_API__ALLOWED_HOSTS"
    before = os.environ.get(name)
    os.environ[name] = f'["{TEST_HOST}"]'
    yield
    if before is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = before


@pytest.fixture(scope="session", autouse=True)
def user_data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The per-user data folder (the default data dir) of every test and child process: a
    temporary one, never the developer's own index (platformdirs reads XDG_DATA_HOME)."""
    folder = tmp_path_factory.mktemp("xdg-data")
    before = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = before


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from timbre.embedding.random_bundle import write_random_bundle

    return write_random_bundle(tmp_path_factory.mktemp("bundle") / "tiny", "tiny", seed=0)


@pytest.fixture(scope="session")
def settings(
    tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory, export_dir: Path
) -> Settings:
    return load_settings(
        data_dir=tmp_path_factory.mktemp("data"),
        models={"bundle": tiny_bundle, "threads": 2},
    )


@pytest.fixture(scope="session")
def clap_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random clap-family bundle (``DIR/clap/`` in the hub's layout)."""
    from timbre.embedding.embedder import get_family

    target = tmp_path_factory.mktemp("clap-bundle") / "tiny"
    get_family("clap").write_random(target, "tiny", 0)
    return target


@pytest.fixture(scope="session")
def clap_settings(
    clap_bundle: Path, tmp_path_factory: pytest.TempPathFactory, export_dir: Path
) -> Settings:
    return load_settings(
        data_dir=tmp_path_factory.mktemp("clap-data"),
        models={"family": "clap", "bundle": clap_bundle, "threads": 2},
    )


@pytest.fixture(scope="session")
def audio_embedder(settings: Settings):  # type: ignore[no-untyped-def]
    from timbre.embedding.embedder import load_audio_embedder

    return load_audio_embedder(settings.models)


@pytest.fixture(scope="session")
def text_embedder(settings: Settings):  # type: ignore[no-untyped-def]
    from timbre.embedding.embedder import load_text_embedder

    return load_text_embedder(settings.models)


@pytest.fixture(scope="session")
def torch_audio_embedder(settings: Settings):  # type: ignore[no-untyped-def]
    """The same models on PyTorch eager, the reference runtime."""
    from timbre.embedding.embedder import load_audio_embedder

    return load_audio_embedder(settings.models.model_copy(update={"runtime": "torch"}))


@pytest.fixture(scope="session")
def torch_text_embedder(settings: Settings):  # type: ignore[no-untyped-def]
    from timbre.embedding.embedder import load_text_embedder

    return load_text_embedder(settings.models.model_copy(update={"runtime": "torch"}))


RUNTIMES = ("onnxruntime", "torch")


@pytest.fixture(params=RUNTIMES)
def any_audio_embedder(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """The audio embedder on each runtime in turn (the default one is onnxruntime on a CPU)."""
    name = "audio_embedder" if request.param == "onnxruntime" else "torch_audio_embedder"
    embedder = request.getfixturevalue(name)
    assert embedder.runtime == request.param
    return embedder


@pytest.fixture(params=RUNTIMES)
def any_text_embedder(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    name = "text_embedder" if request.param == "onnxruntime" else "torch_text_embedder"
    embedder = request.getfixturevalue(name)
    assert embedder.runtime == request.param
    return embedder


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
    from tests.support.ingest_helpers import ingest, job_settings

    data = tmp_path_factory.mktemp("mcp-data")
    ingest(job_settings(tiny_bundle, data), audio_embedder, [mcp_library.root])
    return data
