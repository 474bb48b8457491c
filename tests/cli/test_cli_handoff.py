"""``timbre duplicates`` and ``timbre relabel`` beside a running service: the service owns the
embedded store, so they ask it (as ``ingest`` and ``search`` do) instead of refusing."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from tests.support.api_fixtures import copy_of
from tests.support.live import live_service
from timbre.cli import app
from timbre.cli.owner import write_service_file
from timbre.settings import load_settings


def test_duplicates_and_relabel_are_handed_to_the_service(
    mcp_indexed_dir: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    data = copy_of(mcp_indexed_dir, tmp_path)
    settings = load_settings(data_dir=data, models={"bundle": tiny_bundle, "threads": 2})
    env = {"TIMBRE_DATA_DIR": str(data), "TIMBRE_MODELS__BUNDLE": str(tiny_bundle)}
    with live_service(settings) as url:
        write_service_file(settings, url)  # as `timbre serve` announces itself
        assert json.loads((data / "service.json").read_text())["pid"] == os.getpid()

        done = CliRunner().invoke(app, ["duplicates", "--json"], env=env)
        assert done.exit_code == 0, done.output
        assert f"owned by the service at {url}" in done.stderr
        report = json.loads(done.stdout)
        assert report["points"] == 20  # the whole library, read by the service

        done = CliRunner().invoke(app, ["relabel", "--dry-run"], env=env)
        assert done.exit_code == 0, done.output
        assert f"owned by the service at {url}" in done.stderr
        assert json.loads(done.stdout)["dry_run"] is True

        refused = CliRunner().invoke(
            app, ["relabel", "--vocabulary", str(tmp_path / "v.yaml")], env=env
        )
        assert refused.exit_code == 2
        assert "--vocabulary cannot be handed" in refused.stderr
