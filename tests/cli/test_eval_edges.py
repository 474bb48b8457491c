"""``timbre eval`` where there is little or nothing to grade, and where the live collection is
another family's (what eval is for: every family's collection side by side)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from typer.testing import CliRunner, Result

from timbre.cli import app


def _env(data: Path, bundle: Path, **extra: str) -> dict[str, str]:
    return {
        "TIMBRE_DATA_DIR": str(data),
        "TIMBRE_MODELS__BUNDLE": str(bundle),
        "TIMBRE_MODELS__THREADS": "2",
        **extra,
    }


def _eval(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, ["eval", *args], env=env)


def test_eval_of_a_data_dir_never_indexed_says_so_and_creates_nothing(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    data = tmp_path / "data"
    table = _eval(_env(data, tiny_bundle))
    assert table.exit_code == 0, table.output
    assert "no collection is indexed in this data dir yet" in table.stdout
    graded = _eval(_env(data, tiny_bundle), "--json")
    assert graded.exit_code == 0, graded.output
    assert json.loads(graded.stdout)["families"] == {}
    assert not (data / "qdrant-edge").exists()  # reading made no store


def test_an_empty_collection_is_skipped_with_its_reason(tmp_path: Path, tiny_bundle: Path) -> None:
    from tests.support.ingest_helpers import job_settings
    from timbre.embedding.embedder import describe_models
    from timbre.store import open_store

    data = tmp_path / "data"
    settings = job_settings(tiny_bundle, data)
    open_store(settings, describe_models(settings.models)).close()  # live, published, empty
    graded = _eval(_env(data, tiny_bundle), "--json")
    assert graded.exit_code == 0, graded.output
    clamp3 = json.loads(graded.stdout)["families"]["clamp3"]
    assert "holds no sounds yet" in clamp3["skipped"] and "timbre ingest" in clamp3["skipped"]
    table = _eval(_env(data, tiny_bundle))
    assert table.exit_code == 0 and "clamp3: skipped: " in table.stdout, table.output


def test_a_live_collection_of_the_other_family_is_no_warning(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    from tests.support.ingest_helpers import job_settings
    from tests.support.store_factory import model_info
    from timbre.store import open_store

    data = tmp_path / "data"
    clap = replace(model_info(), family="clap", clap="laion/x@r1", mert="", clamp3="")
    open_store(job_settings(tiny_bundle, data), clap).close()  # a clap collection, live
    graded = _eval(_env(data, tiny_bundle), "--json")  # configured: clamp3
    assert graded.exit_code == 0, graded.output
    assert "re-index" not in graded.stderr, graded.stderr
    assert set(json.loads(graded.stdout)["families"]) == {"clap"}
