"""Which data dir a command uses, and that a read command never creates a store there."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from timbre.cli import app

READ_COMMANDS = [
    ["search", "punchy kick"],
    ["duplicates"],
    ["relabel", "--dry-run"],
    ["store", "snapshot"],
    ["mcp"],
]


@pytest.mark.parametrize("args", READ_COMMANDS, ids=lambda a: a[0])
def test_a_read_command_on_an_empty_data_dir_says_where_it_looked(
    args: list[str], tmp_path: Path, tiny_bundle: Path
) -> None:
    data = tmp_path / "elsewhere"
    env = {"TIMBRE_DATA_DIR": str(data), "TIMBRE_MODELS__BUNDLE": str(tiny_bundle)}
    done = CliRunner().invoke(app, args, env=env)
    assert done.exit_code == 2, done.output
    assert f"no Timbre index in {data}" in done.stderr, done.stderr
    assert "TIMBRE_DATA_DIR" in done.stderr
    assert not (data / "qdrant-edge").exists()  # no store was made to answer "0 results"


def test_the_message_points_at_the_demo_when_only_the_demo_is_indexed(
    mcp_indexed_dir: Path, tmp_path: Path, tiny_bundle: Path
) -> None:
    data = tmp_path / "data"
    (data / "demo").mkdir(parents=True)
    (data / "demo" / "qdrant-edge").symlink_to(mcp_indexed_dir / "qdrant-edge")
    env = {"TIMBRE_DATA_DIR": str(data), "TIMBRE_MODELS__BUNDLE": str(tiny_bundle)}
    done = CliRunner().invoke(app, ["search", "kick"], env=env)
    assert done.exit_code == 2
    assert f"TIMBRE_DATA_DIR='{data / 'demo'}'" in done.stderr, done.stderr


def test_the_default_data_dir_is_per_user_and_timbre_data_dir_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from timbre.settings import load_settings

    monkeypatch.delenv("TIMBRE_DATA_DIR", raising=False)
    monkeypatch.delenv("TIMBRE_MODELS__EXPORT_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # platformdirs reads it on Linux
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.data_dir == tmp_path / "xdg" / "timbre"
    assert settings.models.export_dir == tmp_path / "xdg" / "timbre" / "cache" / "onnx"
    monkeypatch.setenv("TIMBRE_DATA_DIR", str(tmp_path / "mine"))
    assert load_settings().data_dir == tmp_path / "mine"
