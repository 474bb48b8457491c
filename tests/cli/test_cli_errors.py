"""Bad options through the real command line: one plain line naming the option and what it
accepts; no traceback, no pydantic report; a misspelled facet value gets a "did you mean"."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from timbre.cli import app

BAD_OPTIONS = [
    (["search", "kick", "-k", "0"], "-k/--top-k", "1 to"),
    (["search", "kick", "--bpm", "fast"], "--bpm", "MIN-MAX"),
    (["search", "kick", "--kind", "loops"], "--kind", "one_shot or loop"),
    (["search", "kick", "--key", "H"], "--key", "not a musical key"),
    (["search", "kick", "--alpha", "1.5"], "--alpha", "from 0 to 1"),
    (["search", "--like", "missing.wav"], "--like", "neither an audio file nor"),
    (["serve", "--port", "99999"], "--port", "65535"),
    (["duplicates", "--min-cosine", "2"], "--min-cosine", "at most 1"),
    (["ingest", ".", "--shard", "3"], "--shard", "I/N"),
    (["ingest", ".", "--workers", "-1"], "--workers", "greater than or equal to 0"),
    (["ingest", ".", "--batch-size", "0"], "--batch-size", "greater than or equal to 1"),
    (["ingest", ".", "--profile", "fast"], "--profile", "'parallel' or 'sequential'"),
    (["search", "kick", "--nope"], "--nope", "No such option"),
]


def _env(data: Path, bundle: Path) -> dict[str, str]:
    return {"TIMBRE_DATA_DIR": str(data), "TIMBRE_MODELS__BUNDLE": str(bundle), "COLUMNS": "80"}


@pytest.mark.parametrize(("args", "option", "accepts"), BAD_OPTIONS)
def test_a_bad_option_is_one_plain_line(
    args: list[str], option: str, accepts: str, tmp_path: Path, tiny_bundle: Path
) -> None:
    done = CliRunner().invoke(app, args, env=_env(tmp_path / "data", tiny_bundle))
    assert done.exit_code == 2, done.output
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), lines
    assert option in lines[0] and accepts in lines[0], lines
    for noise in ("Traceback", "pydantic", "validation error", "╭", "Usage:"):
        assert noise not in done.output, done.output
    assert not (tmp_path / "data").exists()  # nothing was created on the way


def test_a_misspelled_genre_gets_did_you_mean(mcp_indexed_dir: Path, tiny_bundle: Path) -> None:
    env = _env(mcp_indexed_dir, tiny_bundle)
    done = CliRunner().invoke(app, ["search", "kick", "--genre", "tehcno"], env=env)
    assert done.exit_code == 2, done.output
    assert "--genre" in done.stderr and "did you mean 'techno'?" in done.stderr, done.stderr
    right = CliRunner().invoke(app, ["search", "kick", "--genre", "Techno", "-k", "3"], env=env)
    assert right.exit_code == 0, right.output
    assert right.stdout.startswith("3 results"), right.stdout
