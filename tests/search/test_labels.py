"""Zero-shot labels: vocabulary, label vectors and their cache, the rules, and relabel.

The tiny random-weight text tower makes the labels meaningless but the mechanics real: a
sample whose stored vector equals (or is near) a label's text vector must get that label.
Its label vectors are very alike (pairwise cosine 0.90-0.99), so exact-match margins are
small; the rules here use a margin that such a match clears and a random vector does not.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.store_factory import new_client, open_test_store
from timbre.errors import ConfigError
from timbre.labels import Labeller, LabelRules, label_vectors, load_vocabulary, relabel
from timbre.labels.vectors import embed_vocabulary
from timbre.settings import Settings
from timbre.store import Point, SearchFilter, build_payload

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect")

VOCAB_A = """
version: 1
categories:
  kick: {prompts: [a kick drum hit, a punchy bass drum], instrument: kick}
  snare: {prompts: [a snare drum hit], instrument: snare}
  pad: {prompts: [a warm synth pad]}
character:
  dark: [a dark sound]
  bright: [a bright sound]
"""
VOCAB_B = VOCAB_A.replace("pad: {prompts: [a warm synth pad]}", "choir: {prompts: [a choir]}")

RULES = LabelRules(
    category_min_cosine=0.0, category_min_margin=0.002, tag_min_cosine=0.999, max_auto_tags=3
)


def vocab(tmp_path: Path, text: str, name: str = "labels.yaml") -> Any:
    path = tmp_path / name
    path.write_text(text)
    return load_vocabulary(path)


@pytest.fixture(scope="module")
def info(text_embedder: Any) -> Any:
    return text_embedder.info


def test_shipped_vocabulary_loads_and_names_the_issue_categories() -> None:
    v = load_vocabulary()
    names = set(v.names)
    assert {"kick", "snare", "clap", "hat", "pad", "riser", "drum loop", "punchy", "dusty"} <= names
    assert all(label.prompts for label in v.labels)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\ncategories: {a: {prompts: [x]}, A: {prompts: [y]}}", "defined twice"),
        ("version: 1\ncategories: {a: {prompts: ['  ']}, b: {prompts: [y]}}", "empty prompt"),
        ("version: 1\ncategories: {a: {prompts: [x]}}", "categories"),
        ("version: 1\ncategories: {a: {prompt: [x]}, b: {prompts: [y]}}", "prompt"),
        ("version: [", "not valid YAML"),
    ],
)
def test_bad_vocabularies_are_refused_by_name(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        vocab(tmp_path, text)


def test_label_vectors_are_cached_by_model_and_prompts(
    tmp_path: Path, text_embedder: Any, info: Any
) -> None:
    v = vocab(tmp_path, VOCAB_A)
    calls: list[int] = []

    def loader() -> Any:
        calls.append(1)
        return text_embedder

    first = label_vectors(v, info, tmp_path / "cache", loader, free_text=False)
    again = label_vectors(v, info, tmp_path / "cache", loader, free_text=False)
    assert len(calls) == 1 and np.array_equal(first, again)  # the second read the cache
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-6)
    # each label is the normalised mean of its prompts' vectors
    prompts = text_embedder.embed(["a kick drum hit", "a punchy bass drum"])
    mean = prompts.mean(axis=0)
    np.testing.assert_allclose(first[0], mean / np.linalg.norm(mean), atol=1e-5)
    # other prompts are embedded anew
    label_vectors(
        vocab(tmp_path, VOCAB_B, "b.yaml"), info, tmp_path / "cache", loader, free_text=False
    )
    assert len(calls) == 2


def test_a_vector_at_a_label_gets_that_label(tmp_path: Path, text_embedder: Any) -> None:
    v = vocab(tmp_path, VOCAB_A)
    vectors = embed_vocabulary(v, text_embedder)
    labeller = Labeller(v, vectors, RULES, "clamp3@test")
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(vectors.shape).astype(np.float32) * 0.002
    near = vectors + noise
    near /= np.linalg.norm(near, axis=1, keepdims=True)
    for batch in (vectors, near):
        labels = labeller.label(batch)
        assert [lb.category for lb in labels[:3]] == ["kick", "snare", "pad"]
        assert labels[0].category_score is not None and labels[0].category_score > 0.999
        # character words are auto tags (never categories) at their own vector
        assert "dark" in labels[3].auto_tags and "bright" in labels[4].auto_tags
    fields = labeller.fields(labels[0], {"instrument": None, "instrument_source": None})
    assert fields["instrument"] == "kick" and fields["instrument_source"] == "audio"
    assert (
        fields["labels_version"].startswith("vocab-") and "clamp3@test" in fields["labels_version"]
    )
    # names win: an instrument the names gave is never replaced
    named = labeller.fields(labels[1], {"instrument": "perc", "instrument_source": "name"})
    assert "instrument" not in named
    # the category without an instrument leaves an audio-sourced one empty
    pad = labeller.fields(labels[2], {"instrument": "kick", "instrument_source": "audio"})
    assert pad["instrument"] is None and pad["instrument_source"] is None


def test_thresholds_decide(tmp_path: Path, text_embedder: Any) -> None:
    v = vocab(tmp_path, VOCAB_A)
    vectors = embed_vocabulary(v, text_embedder)
    strict = Labeller(v, vectors, LabelRules(1.01, 0.0, 1.01, 3), "t").label(vectors[:1])[0]
    assert strict.category is None and strict.auto_tags == () and strict.best == "kick"
    # a margin wider than the gap between kick and the runner-up rejects the winner
    gap = strict.margin
    assert 0 < gap < 1
    assert (
        Labeller(v, vectors, LabelRules(0.0, gap + 1e-3, 1.0, 3), "t")
        .label(vectors[:1])[0]
        .category
        is None
    )
    assert (
        Labeller(v, vectors, LabelRules(0.0, gap - 1e-3, 1.0, 3), "t")
        .label(vectors[:1])[0]
        .category
        == "kick"
    )
    loose = Labeller(v, vectors, LabelRules(0.0, 0.0, -1.0, 2), "t").label(vectors[:1])[0]
    assert len(loose.auto_tags) == 2 and loose.auto_tags[0] == "kick"  # best first, capped
    scores = list(loose.auto_tag_scores.values())
    assert scores == sorted(scores, reverse=True)


def _points(vectors: np.ndarray, info: Any) -> list[Point]:
    out = []
    for i, vector in enumerate(vectors):
        sha = hashlib.sha256(f"label-{i}".encode()).hexdigest()
        payload = build_payload(
            {"instrument": "perc" if i == 1 else None, "duration_s": 0.5},
            content_sha256=sha,
            paths=[f"Lib/sample_{i}.wav"],
            model=info,
        )
        out.append(Point.of(vector, payload))
    return out


@pytest.mark.parametrize("adapter", ["edge", "memory"])
def test_relabel_changes_labels_when_the_vocabulary_changes_and_never_the_vectors(
    adapter: str, tmp_path: Path, text_embedder: Any, settings: Settings
) -> None:
    a, b = vocab(tmp_path, VOCAB_A), vocab(tmp_path, VOCAB_B, "b.yaml")
    va, vb = embed_vocabulary(a, text_embedder), embed_vocabulary(b, text_embedder)
    info = text_embedder.info
    client = new_client(adapter) if adapter != "edge" else None
    store = open_test_store(adapter, tmp_path / "data", info, client=client)
    try:
        store.live().upsert(_points(va, info))
        before = {r.id: r.vector for r in store.live().scroll(with_vectors=True)}
        first = relabel(store, Labeller(a, va, RULES, info.clamp3), batch_size=2)
        assert first.points == 5 and first.changed == 5 and first.with_category >= 3
        pad_id = _points(va, info)[2].id
        assert store.live().retrieve([pad_id])[0].payload["category"] == "pad"
        pads = {r.id for r in store.live().scroll() if r.payload["category"] == "pad"}
        found = {r.id for r in store.live().scroll(filter=SearchFilter(category=("PAD",)))}
        assert pad_id in pads and found == pads  # the companions were derived
        # the instrument the name gave survives; the audio fills the one it did not
        snare = store.live().retrieve([_points(va, info)[1].id])[0].payload
        assert snare["instrument"] == "perc" and snare["instrument_source"] == "name"
        kick = store.live().retrieve([_points(va, info)[0].id])[0].payload
        assert kick["instrument"] == "kick" and kick["instrument_source"] == "audio"
        # the same vocabulary again changes nothing
        assert relabel(store, Labeller(a, va, RULES, info.clamp3), batch_size=2).changed == 0
        # a new vocabulary relabels: pad is gone, the third sample is now a choir or another
        second = relabel(store, Labeller(b, vb, RULES, info.clamp3), batch_size=3)
        assert second.changed == 5 and second.labels_version != first.labels_version
        relabelled = store.live().retrieve([pad_id])[0].payload
        assert (
            relabelled["category"] != "pad"
            and relabelled["labels_version"] == second.labels_version
        )
        assert store.live().count(SearchFilter(category=("pad",))) == 0
        after = {r.id: r.vector for r in store.live().scroll(with_vectors=True)}
        assert before.keys() == after.keys()
        for pid, vector in before.items():
            assert np.array_equal(vector, after[pid])
        # a dry run reports and writes nothing
        dry = relabel(store, Labeller(a, va, RULES, info.clamp3), batch_size=5, dry_run=True)
        assert dry.changed == 5 and dry.best_scores["max"] > 0.999
        assert store.live().retrieve([pad_id])[0].payload["category"] != "pad"
    finally:
        store.close()
