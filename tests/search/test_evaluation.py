"""The figures of ``timbre eval`` on hand-made vectors whose answers are known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from timbre.errors import ConfigError
from timbre.evaluation import chance, duplicate_groups, labels_from_csv, labels_from_names, score

RULES = {"min_cosine": 0.99, "duration_tolerance_s": 0.1, "duration_tolerance_ratio": 0.05}


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _library(noise: float, seed: int = 0) -> tuple[np.ndarray, list[str | None], dict]:
    """Three categories, each a tight cluster around its own axis (plus an unlabelled sound)."""
    rng = np.random.default_rng(seed)
    axes = np.eye(8, dtype=np.float32)[:3]
    labels: list[str | None] = [n for n in ("kick", "snare", "hat") for _ in range(12)]
    centre = {"kick": axes[0], "snare": axes[1], "hat": axes[2]}
    rows = np.stack([centre[x] for x in labels if x]) + noise * rng.standard_normal((36, 8))
    vectors = _unit(np.vstack([rows, rng.standard_normal((1, 8))]))
    return vectors, [*labels, None], centre


def test_separated_categories_score_perfectly_and_shuffled_ones_do_not() -> None:
    vectors, labels, queries = _library(noise=0.05)
    durations = [1.2**i for i in range(len(labels))]  # no two agree: no duplicates
    good = score(vectors, labels, queries, durations, **RULES)
    assert (good.sounds, good.labelled, good.categories) == (37, 36, 3)
    assert good.text_r1 == good.text_r10 == good.text_map == good.audio_p10 == 1.0
    assert good.duplicate_groups == 0
    shuffled = list(np.random.default_rng(1).permutation(np.array(labels[:-1], dtype=object)))
    bad = score(vectors, [*shuffled, None], queries, durations, **RULES)
    assert bad.audio_p10 < 0.6 and bad.text_map < 0.7
    assert chance(labels) == {"text_r1": round(1 / 3, 4), "audio_p10": round(11 / 35, 4)}


def test_duplicate_groups_need_close_vectors_and_agreeing_durations() -> None:
    base = _unit(np.random.default_rng(2).standard_normal((4, 16)))
    vectors = np.vstack([base, base[:2] + 1e-4])  # 0-4 and 1-5 are copies
    vectors = _unit(vectors)
    same = [1.0, 2.0, 3.0, 4.0, 1.02, 2.0]
    assert duplicate_groups(vectors, same, 0.99, 0.1, 0.05) == 2
    longer = [1.0, 2.0, 3.0, 4.0, 1.5, 2.0]  # the first copy lasts 0.5 s longer: a new take
    assert duplicate_groups(vectors, longer, 0.99, 0.1, 0.05) == 1


def test_labels_come_from_names_or_a_csv(tmp_path: Path) -> None:
    payloads = [
        {"path": "Drums/Kick 1.wav", "instrument": "kick", "instrument_source": "name"},
        {"path": "Misc/thing.wav", "instrument": "pad", "instrument_source": "audio"},
        {"path": "Misc/other.wav", "instrument": None, "instrument_source": None},
    ]
    assert labels_from_names(payloads) == ["kick", None, None]  # never the guessed one
    table = tmp_path / "labels.csv"
    table.write_text("path,label\nMisc/thing.wav,Pad\nnot/indexed.wav,fx\n")
    assert labels_from_csv(table, payloads) == [None, "pad", None]
    table.write_text("elsewhere.wav,kick\n")
    with pytest.raises(ConfigError, match="labels none"):
        labels_from_csv(table, payloads)


def test_per_category_figures_show_the_category_a_family_misses() -> None:
    from math import comb

    vectors, labels, centre = _library(noise=0.05)
    durations = [1.2**i for i in range(len(labels))]
    # The hat query lands among the kicks: its category fails, the other two do not.
    queries = {**centre, "hat": centre["kick"]}
    scores = score(vectors, labels, queries, durations, **RULES)
    cats = scores.per_category
    assert set(cats) == {"kick", "snare", "hat"}
    assert (cats["hat"].text_r1, cats["hat"].text_r10) == (0.0, 0.0)
    assert cats["hat"].text_ap < 0.5
    for name in ("kick", "snare"):
        assert cats[name].text_r1 == cats[name].text_r10 == cats[name].text_ap == 1.0
    assert all(c.sounds == 12 and c.audio_p10 == 1.0 for c in cats.values())
    # the averages are the means of the categories
    assert scores.text_r10 == pytest.approx(2 / 3)
    assert scores.text_map == pytest.approx(np.mean([c.text_ap for c in cats.values()]))
    assert cats["hat"].chance_r10 == pytest.approx(1 - comb(24, 10) / comb(36, 10))
    assert cats["hat"].chance_p10 == pytest.approx(11 / 35)

    # Scattered hats: only their own audio figure drops.
    rng = np.random.default_rng(3)
    scattered = vectors.copy()
    scattered[24:36] = _unit(rng.standard_normal((12, 8)))
    mixed = score(scattered, labels, centre, durations, **RULES).per_category
    assert mixed["hat"].audio_p10 < 0.5
    assert mixed["kick"].audio_p10 == mixed["snare"].audio_p10 == 1.0


def test_the_eval_table_and_json_carry_the_categories() -> None:
    from math import comb

    from timbre.cli.evaluate import _table

    vectors, labels, centre = _library(noise=0.05)
    durations = [1.2**i for i in range(len(labels))]
    good = score(vectors, labels, centre, durations, **RULES).as_dict()
    poor = score(vectors, labels, {**centre, "hat": centre["kick"]}, durations, **RULES)
    families = {
        "clamp3": {"collection": "timbre-a-001", "live": False, **good},
        "clap": {"collection": "timbre-clap-a-002", "live": True, **poor.as_dict()},
    }
    assert families["clap"]["per_category"]["hat"]["text_r10"] == 0.0  # JSON-ready
    report = {"labels": "names", "chance": chance(labels), "chance_level": False}
    lines = _table({**report, "families": families}).splitlines()
    assert any(line.startswith("by category (sounds)") for line in lines)
    hat = next(line for line in lines if line.strip().startswith("hat (12)")).split()
    assert hat[2:5] == ["1", "/", "1.000"]  # clamp3: its query found hats, neighbours all hats
    assert hat[5:8] == ["0", "/", "1.000"]  # clap: its query missed the hats
    chance_r10 = 1 - comb(24, 10) / comb(36, 10)
    assert hat[8:] == [f"{chance_r10:.3f}", "/", f"{11 / 35:.3f}"]
