"""The deployable parts: compose files validate, images and torch are pinned, constraints.txt
pins a set inside pyproject's ranges, every compose variable is documented in .env.example, the
image is non-root with a health check, and the settings reference is what the code generates."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from timbre.settings_doc import settings_markdown

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = [ROOT / "docker-compose.yml", ROOT / "docker-compose.cluster.yml"]
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")


@pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose is not installed"
)
@pytest.mark.parametrize("compose", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_files_validate(compose: Path, tmp_path: Path) -> None:
    for profile in ([], ["--profile", "ingest"]):
        done = subprocess.run(
            ["docker-compose", "-f", str(compose), *profile, "config", "-q"],
            cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", "SAMPLE_LIBRARY": str(tmp_path)},
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("compose", COMPOSE_FILES, ids=lambda p: p.name)
def test_images_are_pinned(compose: Path) -> None:
    data = yaml.safe_load(compose.read_text())
    env = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    for name, service in data["services"].items():
        image = VARIABLE.sub(lambda m: env.get(m.group(1), ""), service["image"])
        assert ":" in image and not image.endswith(":latest"), f"{name}: {service['image']}"
        if image.startswith("qdrant/qdrant"):
            assert re.fullmatch(r"qdrant/qdrant:v\d+\.\d+\.\d+", image), image


def test_every_compose_variable_is_in_env_example() -> None:
    documented = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    for compose in COMPOSE_FILES:
        used = set(VARIABLE.findall(compose.read_text()))
        assert used <= documented, f"{compose.name}: undocumented {sorted(used - documented)}"


def test_dockerfile_is_pinned_non_root_and_health_checked() -> None:
    text = (ROOT / "Dockerfile").read_text()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    torch_pin = next(d for d in pyproject["project"]["dependencies"] if d.startswith("torch=="))
    assert f"{torch_pin}\n" in text or f"{torch_pin} " in text
    assert "pip install -c /opt/timbre/constraints.txt" in text
    base = re.search(r"ARG PYTHON_IMAGE=(\S+)", text)
    assert base and re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base.group(1))
    assert re.search(r"^USER timbre$", text, re.MULTILINE)
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert ":latest" not in text


def test_constraints_pin_a_set_the_ranges_admit() -> None:
    """constraints.txt pins every dependency, dev tools included, inside pyproject's ranges."""
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dep in project["dependencies"] + project["optional-dependencies"]["dev"]:
        req = Requirement(dep)
        pinned = pins[canonicalize_name(req.name)]
        assert req.specifier.contains(pinned), f"{dep} does not admit the pinned {pinned}"


def test_settings_reference_is_generated() -> None:
    expected = settings_markdown()
    assert (ROOT / "docs" / "settings.md").read_text() == expected, (
        "docs/settings.md is stale: run `python -m timbre.settings_doc > docs/settings.md`"
    )
    # every setting appears, with a reason
    rows = [line for line in expected.splitlines() if line.startswith("| `")]
    assert len(rows) > 40
    assert all(not line.endswith("|  |") for line in rows)
