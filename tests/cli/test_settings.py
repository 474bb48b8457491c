"""Settings precedence: YAML defaults < overlay YAML < environment < explicit arguments."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from timbre.errors import ConfigError
from timbre.settings import DEFAULT_CONFIG_FILE, load_settings
from timbre.settings_doc import settings_rows


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("TIMBRE_"):
            monkeypatch.delenv(key)


def test_defaults_come_from_the_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))  # not this user's own data dir
    s = load_settings()
    assert s.data_dir == tmp_path / "timbre"  # data_dir: null, the per-user data folder
    assert s.models.bundle is None
    assert s.models.xlmr.revision == "e73636d4f797dec63c3081bb6ed5c7b0bb3f2089"


def test_every_setting_has_a_description_and_a_default() -> None:
    """Each setting says what it is and why on its field; its default is in default.yaml."""
    defaults = yaml.safe_load(DEFAULT_CONFIG_FILE.read_text())
    rows = list(settings_rows())
    assert len(rows) > 100
    for dotted, text in rows:
        assert text, f"{dotted} has no description"
        value = defaults
        for part in dotted.split("."):
            assert part in value, f"{dotted} has no default in default.yaml"
            value = value[part]


def test_environment_overrides_yaml_with_nesting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMBRE_MODELS__BUNDLE", "/srv/models")
    monkeypatch.setenv("TIMBRE_MODELS__MERT__REVISION", "abc123")
    monkeypatch.setenv("TIMBRE_DATA_DIR", "/tmp/timbre-data")
    s = load_settings()
    assert s.models.bundle == Path("/srv/models")
    assert s.models.mert.revision == "abc123"
    assert s.models.mert.repo == "m-a-p/MERT-v1-95M"  # siblings keep their YAML values
    assert s.data_dir == Path("/tmp/timbre-data")


def test_explicit_arguments_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMBRE_MODELS__THREADS", "3")
    assert load_settings().models.threads == 3
    assert load_settings(models={"threads": 1}).models.threads == 1


def test_overlay_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    overlay = tmp_path / "site.yaml"
    overlay.write_text("models:\n  device: cpu\n  mert_batch_windows:\n    cpu: 2\n")
    monkeypatch.setenv("TIMBRE_CONFIG", str(overlay))
    s = load_settings()
    assert s.models.device == "cpu" and s.models.mert_batch_windows.cpu == 2
    assert s.models.mert_batch_windows.cuda == 32  # the rest of the section is kept


def test_invalid_values_name_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMBRE_MODELS__DEVICE", "tpu")
    with pytest.raises(ConfigError, match=r"models\.device"):
        load_settings()


def test_unknown_keys_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    overlay = tmp_path / "typo.yaml"
    overlay.write_text("models:\n  treads: 4\n")
    monkeypatch.setenv("TIMBRE_CONFIG", str(overlay))
    with pytest.raises(ConfigError, match="treads"):
        load_settings()


def test_unreadable_overlay(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TIMBRE_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings()


def test_broken_yaml_is_named_as_such(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    overlay = tmp_path / "broken.yaml"
    overlay.write_text("models:\n  threads: [4\n")
    monkeypatch.setenv("TIMBRE_CONFIG", str(overlay))
    with pytest.raises(ConfigError, match="not valid YAML") as caught:
        load_settings()
    assert "broken.yaml" in str(caught.value)


def test_removed_precision_settings_are_ignored_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    overlay = tmp_path / "old.yaml"
    overlay.write_text("models:\n  threads: 3\n  text_precision: int8\n")
    monkeypatch.setenv("TIMBRE_CONFIG", str(overlay))
    monkeypatch.setenv("TIMBRE_MODELS__AUDIO_PRECISION", "bf16")
    settings = load_settings()
    assert settings.models.threads == 3  # the rest of the section still applies
    assert "models.text_precision, models.audio_precision: no longer a setting" in caplog.text
