"""``timbre search --bpm 124 --key Am``: one tempo and one key are the project's, each hit
shows how it fits (fitting ones first); a range and several keys still filter. On the embedded
store and through a running service (the same hits, the same fits)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.support.api_fixtures import copy_of
from tests.support.live import live_service
from timbre.cli import app
from timbre.cli.owner import write_service_file
from timbre.cli.search import fit_text
from timbre.fit import ProjectContext, fit_of
from timbre.settings import load_settings

EVERYTHING = 44  # the API tests' library: 4 packs x (9 one-shots + a drum and a bass loop)


def _env(data: Path, bundle: Path) -> dict[str, str]:
    return {"TIMBRE_DATA_DIR": str(data), "TIMBRE_MODELS__BUNDLE": str(bundle), "COLUMNS": "120"}


@pytest.fixture(scope="module")
def data(indexed_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the indexed library of the API tests (keyed basses and pads, loops at 128,
    122, 88 and 174 BPM) that this module's commands open."""
    return copy_of(indexed_dir, tmp_path_factory.mktemp("cli-fit"))


def run(env: dict[str, str], *args: str) -> Any:
    done = CliRunner().invoke(app, ["search", *args], env=env)
    assert done.exit_code == 0, done.output
    return done


def search_json(env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    return list(json.loads(run(env, *args, "--json").stdout)["hits"])


def check_fits(hits: list[dict[str, Any]], bpm: float | None, key: str | None) -> None:
    project = ProjectContext.of(bpm, key)
    for hit in hits:
        assert {k: v for k, v in hit["fit"].items() if k != "audio_url"} == fit_of(
            project, hit
        ).as_dict()


def test_one_tempo_is_the_projects_and_every_hit_shows_its_fit(
    data: Path, tiny_bundle: Path
) -> None:
    env = _env(data, tiny_bundle)
    k = str(EVERYTHING)
    hits = search_json(env, "drum loop", "--bpm", "124", "-k", k)
    assert len(hits) == EVERYTHING  # not a filter: one-shots and far tempos stay
    check_fits(hits, 124, None)
    flags = [h["fit"]["fits"] for h in hits]
    assert flags == sorted(flags, reverse=True) and set(flags) == {True, False}  # fit first
    by_score = search_json(env, "drum loop", "--bpm", "124", "--sort", "score", "-k", k)
    scores = [h["score"] for h in by_score]
    assert scores == sorted(scores, reverse=True)
    fitting = search_json(env, "drum loop", "--bpm", "124", "--only-fitting", "-k", k)
    assert [h["id"] for h in fitting] == [h["id"] for h in hits if h["fit"]["fits"]]
    # the printed list: the fit in words under each hit
    printed = run(env, "drum loop", "--bpm", "124", "-k", k).stdout.splitlines()
    loops = [h for h in hits if h["kind"] == "loop"]
    for hit in loops:
        row = next(i for i, line in enumerate(printed) if line.endswith(hit["path"]))
        assert printed[row + 1].strip() == fit_text(hit["fit"])
    # 124 / 122 - 1 = +1.6 %, 124 / 128 - 1 = -3.1 %; 124 / 174 - 1 = -28.7 % does not fit
    for words in ("fits: stretch +1.6 %", "fits: stretch -3.1 %", "not fit: stretch -28.7 %"):
        assert any(words in line for line in printed), words


def test_a_range_and_several_keys_still_filter(data: Path, tiny_bundle: Path) -> None:
    env = _env(data, tiny_bundle)
    ranged = search_json(env, "drum loop", "--bpm", "120-130", "-k", "10")
    assert ranged and {h["bpm"] for h in ranged} == {122.0, 128.0}
    assert all(h["fit"] is None for h in ranged)
    keyed = search_json(env, "bass", "--key", "Am", "--key", "C", "-k", "10")
    assert keyed and {h["key"] for h in keyed} <= {"Am", "C"}
    one_key = search_json(env, "bass", "--key", "C", "-k", str(EVERYTHING))
    assert len(one_key) == EVERYTHING  # one key is the project's: nothing filtered out
    check_fits(one_key, None, "C")


def test_through_a_running_service_the_fit_is_the_same(
    data: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    env = _env(data, tiny_bundle)
    local = search_json(env, "bass", "--bpm", "122", "--key", "Am", "-k", "8")
    check_fits(local, 122, "Am")
    served_dir = copy_of(data, tmp_path)
    settings = load_settings(data_dir=served_dir, models={"bundle": tiny_bundle, "threads": 2})
    with live_service(settings) as url:
        write_service_file(settings, url)
        served_env = _env(served_dir, tiny_bundle)
        served = search_json(served_env, "bass", "--bpm", "122", "--key", "Am", "-k", "8")
    assert [h["id"] for h in served] == [h["id"] for h in local]
    for near, far in zip(local, served, strict=True):
        assert {**near["fit"], "audio_url": None} == {**far["fit"], "audio_url": None}
        if far["fit"]["stretch_pct"]:  # the service names the matched rendition
            assert far["fit"]["audio_url"].startswith(f"{url}/v1/items/{far['id']}/audio?bpm=122")
        assert near["fit"]["audio_url"] is None  # nothing renders it without a service


@pytest.mark.parametrize(
    ("args", "option", "says"),
    [
        (["--bpm", "0"], "--bpm", "greater than 0"),
        (["--bpm", "1000"], "--bpm", "999"),
        (["--key", "H"], "--key", "not a musical key"),
        (["--bpm", "124", "--sort", "best"], "--sort", "fit or score"),
        (["--only-fitting"], "--only-fitting", "--bpm 124 or --key Am"),
    ],
)
def test_a_bad_project_is_one_plain_line(
    args: list[str], option: str, says: str, tmp_path: Path, tiny_bundle: Path
) -> None:
    done = CliRunner().invoke(app, ["search", "kick", *args], env=_env(tmp_path, tiny_bundle))
    assert done.exit_code == 2, done.output
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and option in lines[0] and says in lines[0], lines
