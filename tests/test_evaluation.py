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
