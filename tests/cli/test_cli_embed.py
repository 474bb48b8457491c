"""`timbre embed` and `timbre models random` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.support.audio_factory import hat, kick, write
from timbre.cli import app

SR = 44100


@pytest.fixture
def runner(settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TIMBRE_MODELS__BUNDLE", str(settings.models.bundle))
    return CliRunner()


def _lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_one_json_line_per_input_in_order(
    runner: CliRunner, tmp_path: Path, audio_embedder
) -> None:
    good = write(tmp_path / "kick.wav", kick(SR), SR)
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    other = write(tmp_path / "hat.flac", hat(SR), SR)
    result = runner.invoke(app, ["embed", str(good), str(bad), str(other), "--text", "dark kick"])
    assert result.exit_code == 1  # finished, with a failed input
    records = _lines(result.stdout)
    assert [r["source"] for r in records] == ["dark kick", str(good), str(bad), str(other)]
    assert records[0]["kind"] == "text" and records[1]["kind"] == "audio"
    assert records[2]["error"]["code"] == "not_audio"
    for r in (records[0], records[1], records[3]):
        assert r["pipeline_version"] == audio_embedder.info.pipeline_version
        assert abs(np.linalg.norm(r["vector"]) - 1.0) < 1e-5
    from timbre.audio.decode import decode_file

    decoded = decode_file(good, sample_rate=24000, max_duration_s=60, max_file_bytes=10**8)
    expected = audio_embedder.embed([decoded.samples])[0]
    np.testing.assert_allclose(records[1]["vector"], expected, atol=1e-6)


def test_all_good_exits_zero(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["embed", str(write(tmp_path / "k.aiff", kick(SR), SR))])
    assert result.exit_code == 0
    assert len(_lines(result.stdout)) == 1


def test_nothing_to_embed_is_a_usage_error(runner: CliRunner) -> None:
    assert runner.invoke(app, ["embed"]).exit_code == 2


def test_broken_models_exit_2_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMBRE_MODELS__BUNDLE", str(tmp_path / "missing"))
    result = CliRunner().invoke(app, ["embed", "--text", "kick"])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_models_random_writes_a_loadable_bundle(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["models", "random", str(tmp_path / "b"), "--seed", "3"])
    assert result.exit_code == 0
    assert "meaningless" in result.stderr
    manifest = json.loads((tmp_path / "b" / "timbre-models.json").read_text())
    assert manifest["random_weights"] is True and manifest["seed"] == 3
