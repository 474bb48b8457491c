"""Labels of samples from their vectors: cosine with each label, then the rules.

Rules (the ``labels`` settings):

- ``category``: the best-scoring category, kept only if its cosine reaches
  ``category_min_cosine`` *and* beats the runner-up category by ``category_min_margin``.
  Zero-shot scores are an argmax over prompts; a near-tie between two categories ("kick" vs
  "tom" at 0.31 and 0.30) is the model saying it does not know, and a wrong category is worse
  than none for a filter, so a tie gives no category.
- ``auto_tags``: every label (category or character word) whose cosine reaches
  ``tag_min_cosine``, best first, at most ``max_auto_tags``; their cosines go to
  ``auto_tag_scores``.
- ``instrument``: names win. When the file's names said no instrument, the category's
  instrument (from the vocabulary) fills it, with ``instrument_source: audio``; a relabel
  replaces only instruments that came from the audio.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from timbre.labels.vocabulary import Vocabulary

SCORE_DECIMALS = 4
"""Cosines are stored to 4 decimals: thresholds are set to 2, and payloads stay small."""


@dataclass(frozen=True)
class LabelRules:
    """Thresholds that turn cosines into labels (see the module docstring)."""

    category_min_cosine: float
    category_min_margin: float
    tag_min_cosine: float
    max_auto_tags: int


@dataclass(frozen=True)
class Labels:
    """What the vocabulary says about one sample."""

    category: str | None
    category_score: float | None
    auto_tags: tuple[str, ...]
    auto_tag_scores: dict[str, float]
    best: str
    best_score: float
    margin: float


class Labeller:
    """Scores vectors against the label vectors of a vocabulary and applies :class:`LabelRules`.

    Args:
        vocabulary: the labels.
        vectors: ``[n_labels, dim]`` L2-normalised label vectors, in vocabulary order.
        rules: the thresholds.
        text_model: identity of the text tower that embedded the labels (``ModelInfo.clamp3``),
            recorded in ``labels_version``.
    """

    def __init__(
        self, vocabulary: Vocabulary, vectors: np.ndarray, rules: LabelRules, text_model: str
    ) -> None:
        if vectors.shape[0] != len(vocabulary.labels):
            raise ValueError(
                f"{vectors.shape[0]} label vectors for {len(vocabulary.labels)} labels"
            )
        self.vocabulary = vocabulary
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.rules = rules
        self.text_model = text_model
        self._names = vocabulary.names
        self._categories = np.array([lb.kind == "category" for lb in vocabulary.labels])
        self._instrument = {lb.name: lb.instrument for lb in vocabulary.labels}
        material = json.dumps([vocabulary.content_hash(), asdict(rules), text_model])
        digest = hashlib.sha256(material.encode()).hexdigest()[:12]
        self.version = f"vocab-{digest}@{text_model}"
        """``labels_version``: changes with the vocabulary, the rules or the text model."""

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def label(self, vectors: np.ndarray) -> list[Labels]:
        """Labels of each row of ``vectors`` (``[n, dim]``, L2-normalised)."""
        if len(vectors) == 0:
            return []
        scores = np.asarray(vectors, dtype=np.float32) @ self.vectors.T
        cat_idx = np.flatnonzero(self._categories)
        cat_scores = scores[:, cat_idx]
        order = np.argsort(-cat_scores, axis=1, kind="stable")
        r = self.rules
        out = []
        for row, s in enumerate(scores):
            first = int(cat_idx[order[row, 0]])
            best = float(s[first])
            second = float(s[cat_idx[order[row, 1]]]) if len(cat_idx) > 1 else -1.0
            margin = best - second
            clear = best >= r.category_min_cosine and margin >= r.category_min_margin
            tagged = [
                int(i)
                for i in np.argsort(-s, kind="stable")[: r.max_auto_tags]
                if s[i] >= r.tag_min_cosine
            ]
            out.append(
                Labels(
                    category=self._names[first] if clear else None,
                    category_score=round(best, SCORE_DECIMALS) if clear else None,
                    auto_tags=tuple(self._names[i] for i in tagged),
                    auto_tag_scores={
                        self._names[i]: round(float(s[i]), SCORE_DECIMALS) for i in tagged
                    },
                    best=self._names[first],
                    best_score=best,
                    margin=margin,
                )
            )
        return out

    def instrument_of(self, category: str | None) -> str | None:
        """The instrument a category stands for (the vocabulary's), None for no category."""
        return self._instrument.get(category) if category else None

    def fields(self, labels: Labels, stored: Mapping[str, Any]) -> dict[str, Any]:
        """The payload fields for ``labels`` on a point whose payload is ``stored``.

        ``stored`` needs ``instrument`` and ``instrument_source``: an instrument the names gave
        (source ``name``, or any instrument of a point labelled before sources were recorded)
        is never replaced.
        """
        out: dict[str, Any] = {
            "category": labels.category,
            "category_score": labels.category_score,
            "auto_tags": list(labels.auto_tags),
            "auto_tag_scores": dict(labels.auto_tag_scores),
            "labels_version": self.version,
        }
        source = stored.get("instrument_source")
        named = source == "name" or (source is None and stored.get("instrument"))
        if not named:
            instrument = self.instrument_of(labels.category)
            out["instrument"] = instrument
            out["instrument_source"] = "audio" if instrument else None
        return out
