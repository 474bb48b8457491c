"""``timbre ingest`` exit codes: no audio found, and an unexpected crash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.support.ingest_helpers import ingest, job_settings


def test_a_library_with_no_audio_says_so_and_exits_1(
    tmp_path: Path, tiny_bundle: Path, audio_embedder: Any, caplog: pytest.LogCaptureFixture
) -> None:
    lib = tmp_path / "Presets"
    lib.mkdir()
    (lib / "Lead.fxp").write_bytes(b"CcnK" + bytes(60))
    (lib / "Piano.sf2").write_bytes(b"RIFF\x00\x00\x00\x00sfbk")
    result = ingest(job_settings(tiny_bundle, tmp_path / "data"), audio_embedder, [lib])
    assert result.exit_code == 1
    assert result.summary["counts"]["discovered"] == 0
    assert result.summary["skipped"]["by_reason"] == {"not_audio": 1, "unsupported_format": 1}
    assert "found no audio under" in caplog.text


def test_an_unexpected_crash_has_its_own_exit_code(
    tmp_path: Path, tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug (simulated: the job itself raises) exits 3, not 1 ("some files failed")."""
    import ingest.job
    from timbre.cli import app

    def crash(*_: Any, **__: Any) -> None:
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(ingest.job, "run_ingest", crash)
    (tmp_path / "lib").mkdir()
    env = {"TIMBRE_DATA_DIR": str(tmp_path / "data"), "TIMBRE_MODELS__BUNDLE": str(tiny_bundle)}
    done = CliRunner().invoke(app, ["ingest", str(tmp_path / "lib"), "--dry-run"], env=env)
    assert done.exit_code == 3, done.output
    assert "crashed on an unexpected ZeroDivisionError: simulated bug" in done.output
    assert "This is a bug" in done.output


def test_the_help_lists_every_exit_code() -> None:
    from timbre.cli import app

    shown = CliRunner().invoke(app, ["ingest", "--help"], env={"COLUMNS": "100"}).output
    for code in ("0 ", "1 ", "2 ", "3 ", "130"):
        assert f"  {code}" in shown, shown
    assert "--rehash" in shown
