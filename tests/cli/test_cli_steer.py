"""``timbre search`` reads excluded words from its text with the service's own rule."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from timbre.cli import app


def _env(data: Path, bundle: Path) -> dict[str, str]:
    return {"TIMBRE_DATA_DIR": str(data), "TIMBRE_MODELS__BUNDLE": str(bundle), "COLUMNS": "80"}


def test_a_text_of_excluded_words_only_is_one_plain_line(tmp_path: Path, tiny_bundle: Path) -> None:
    done = CliRunner().invoke(
        app, ["search", "--", '-distorted -"lo fi"'], env=_env(tmp_path / "data", tiny_bundle)
    )
    assert done.exit_code == 2, done.output
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "TEXT" in lines[0] and "only words to avoid" in lines[0], lines
    assert not (tmp_path / "data").exists()  # refused before anything was opened


def test_excluded_words_steer_the_search(mcp_indexed_dir: Path, tiny_bundle: Path) -> None:
    env = _env(mcp_indexed_dir, tiny_bundle)
    steered = CliRunner().invoke(app, ["search", "kick -distorted", "-k", "3", "--json"], env=env)
    assert steered.exit_code == 0, steered.output
    data = json.loads(steered.stdout)
    assert data["query"] == {"text": "kick", "avoid": ["distorted"]}
    plain = json.loads(
        CliRunner().invoke(app, ["search", "kick", "-k", "3", "--json"], env=env).stdout
    )
    assert plain["query"] == {"text": "kick"}
    assert [h["score"] for h in plain["hits"]] != [h["score"] for h in data["hits"]]
    shown = CliRunner().invoke(app, ["search", "hi-hat -lo-fi", "-k", "2"], env=env)
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines()[0].endswith("(away from: lo-fi)")
