"""Settings precedence: YAML defaults < overlay YAML < environment < explicit arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from timbre.errors import ConfigError
from timbre.settings import DEFAULT_CONFIG_FILE, load_settings


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


def test_every_default_is_commented_with_its_reason() -> None:
    """Each key in default.yaml has a comment on its line or just above it (the entries of the
    genre and instrument vocabularies are data: their mapping carries the comment)."""
    lines = DEFAULT_CONFIG_FILE.read_text().splitlines()
    vocabulary_indent: int | None = None
    for i, line in enumerate(lines):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if vocabulary_indent is not None and stripped and indent > vocabulary_indent:
            continue
        vocabulary_indent = None
        if stripped in ("genres:", "instruments:"):
            vocabulary_indent = indent
        if not stripped or stripped.startswith("#") or stripped.endswith(":"):
            continue  # blank, comment, or a section header
        above = lines[i - 1].strip() if i else ""
        commented = "#" in line or above.startswith("#")
        assert commented, f"default.yaml line {i + 1} has no comment: {line}"


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
