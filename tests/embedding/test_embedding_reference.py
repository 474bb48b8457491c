"""Timbre's batched pipeline against a literal transcription of the reference (docs/model-spec.md),
on both runtimes (ONNX Runtime, the CPU default, and PyTorch eager).

Each clip length below exercises one rule: a whole-track one-shot (< 1 s), a clip shorter
than 0.1 s (padded), a single partial window, exactly one window, a tail under 1 s (dropped),
a tail of exactly 1 s (kept), several windows with a kept tail.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.audio_factory import chord_loop, hat, kick, tone
from tests.support.reference_clamp3 import Reference, cosine
from timbre.embedding.family import l2_normalize
from timbre.embedding.random_bundle import CLAMP3_SAAS_FILENAME

SR = 24000
TOL = 1e-6  # max |difference| of unit vectors; float32 reordering gives ~1e-7


@pytest.fixture(scope="module")
def reference(tiny_bundle: Path) -> Reference:
    return Reference(tiny_bundle, CLAMP3_SAAS_FILENAME)


CLIPS = {
    "hat_0.12s": lambda: hat(SR, 0.12),
    "click_0.05s": lambda: hat(SR, 0.05, seed=3),
    "kick_0.4s": lambda: kick(SR, 0.4),
    "tone_2.5s": lambda: tone(SR, 2.5, 330.0),
    "exactly_5s": lambda: chord_loop(SR, 5.0, seed=1),
    "tail_0.99s_dropped": lambda: chord_loop(SR, 5.99, seed=2),
    "tail_1s_kept": lambda: chord_loop(SR, 6.0, seed=3),
    "loop_12.3s": lambda: chord_loop(SR, 12.3, seed=4),
}


@pytest.mark.parametrize("name", list(CLIPS))
def test_audio_matches_reference(name: str, any_audio_embedder, reference: Reference) -> None:
    wav = CLIPS[name]()
    ours = any_audio_embedder.embed([wav])[0]
    ref = l2_normalize(reference.audio_embedding(wav))
    assert np.abs(ours - ref).max() < TOL, name
    assert abs(float(np.linalg.norm(ours)) - 1.0) < 1e-6


def test_batched_across_tracks_matches_reference(any_audio_embedder, reference: Reference) -> None:
    waves = [clip() for clip in CLIPS.values()]
    ours = any_audio_embedder.embed(waves)
    for i, wav in enumerate(waves):
        ref = l2_normalize(reference.audio_embedding(wav))
        assert np.abs(ours[i] - ref).max() < TOL


def test_window_counts_follow_the_tail_rule(any_audio_embedder) -> None:
    feats = any_audio_embedder.features(
        [kick(SR, 0.4), chord_loop(SR, 5.99), chord_loop(SR, 6.0), chord_loop(SR, 12.3)]
    )
    assert [f.shape[0] for f in feats] == [1, 1, 2, 3]
    assert all(f.shape[1] == any_audio_embedder.mert.hidden_size for f in feats)


def test_whole_track_normalisation_on_a_quiet_passage(
    any_audio_embedder, reference: Reference
) -> None:
    """A loud window followed by a near-silent one: normalising per window would lift the quiet
    passage to full scale; the reference normalises once over the track. MERT barely reacts to
    gain elsewhere, so this is the input that tells the two rules apart."""
    rng = np.random.default_rng(7)
    loud = chord_loop(SR, 5.0, seed=5)
    quiet = (1e-4 * rng.standard_normal(5 * SR)).astype(np.float32)
    wav = np.concatenate([loud, quiet])
    ours = any_audio_embedder.embed([wav])[0]
    right = l2_normalize(reference.audio_embedding(wav, normalize="track"))
    wrong = l2_normalize(reference.audio_embedding(wav, normalize="window"))
    assert np.abs(ours - right).max() < TOL
    assert np.abs(ours - wrong).max() > 100 * TOL  # the test can tell the rules apart


@pytest.mark.parametrize("rows", [1, 126, 127, 128, 129, 255, 256, 300])
def test_audio_tower_segments_match_reference(
    rows: int, any_audio_embedder, reference: Reference
) -> None:
    """MERT window vectors straight into the tower: rows + 2 zero vectors cross 128 here, so
    one and several segments, the overlapping last segment and its weight are all exercised."""
    rng = np.random.default_rng(rows)
    feats = rng.standard_normal((rows, any_audio_embedder.mert.hidden_size)).astype(np.float32)
    ours = any_audio_embedder.embed_features([feats])[0]
    ref = l2_normalize(reference.audio_from_features(torch.from_numpy(feats)).numpy())
    assert np.abs(ours - ref).max() < TOL


def test_zero_vectors_at_both_ends_matter(any_audio_embedder, reference: Reference) -> None:
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((4, any_audio_embedder.mert.hidden_size)).astype(np.float32)
    with_zeros = any_audio_embedder.embed_features([feats])[0]
    # The same rows with the zero vectors removed make a different input.
    with torch.no_grad():
        rows = torch.from_numpy(feats)
        without = l2_normalize(reference._segmented(rows, reference._audio_segment).numpy())
    assert np.abs(with_zeros - without).max() > 100 * TOL


TEXTS = [
    "punchy techno kick",
    "warm atmospheric pad",
    "Dunkler Bass, 124 BPM, F-Moll",
    "line one\nline two\nline one\n\nline three",
    "a long description of a sample " * 40,  # > 128 tokens: several segments
]


@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_text_matches_reference(text: str, any_text_embedder, reference: Reference) -> None:
    ours = any_text_embedder.embed([text])[0]
    ref = l2_normalize(reference.text_embedding(text))
    assert np.abs(ours - ref).max() < TOL


def test_long_text_really_spans_segments(any_text_embedder) -> None:
    ids = any_text_embedder.tower.tokens.token_ids(TEXTS[-1])
    assert len(ids) > 2 * 128
    assert ids[0] == 0 and ids[-1] == 2  # <s> ... </s>


def test_text_batch_equals_one_at_a_time(any_text_embedder) -> None:
    batch = any_text_embedder.embed(TEXTS)
    single = np.stack([any_text_embedder.embed([t])[0] for t in TEXTS])
    assert np.abs(batch - single).max() < TOL


def test_multiline_dedupe_keeps_first_order_and_joins_with_separator(any_text_embedder) -> None:
    tower = any_text_embedder.tower
    joined = tower.tokens.token_ids("b\na\nb\n\na")
    assert joined == tower.tokens.tokenizer.encode("b</s>a").ids
    assert joined.count(2) == 2  # the literal separator became the </s> token, plus the end


def test_audio_and_text_share_one_space(any_audio_embedder, any_text_embedder) -> None:
    a = any_audio_embedder.embed([kick(SR)])[0]
    t = any_text_embedder.embed(["kick"])[0]
    assert a.shape == t.shape == (any_audio_embedder.dim,)
    assert -1.0 <= cosine(a, t) <= 1.0


def test_empty_text_is_refused(any_text_embedder) -> None:
    with pytest.raises(ValueError, match="empty"):
        any_text_embedder.embed(["  \n "])
