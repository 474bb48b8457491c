"""Labels of samples from their vectors: cosine with each label of the vocabulary file, then
the ``labels`` rules. ``category``: the best one, if it reaches ``category_min_cosine`` and
beats the runner-up by ``category_min_margin`` (a wrong category is worse than none);
``auto_tags``: labels reaching ``tag_min_cosine``; ``instrument``: names win, else the
category's. :func:`relabel` re-labels a collection from its stored vectors.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from timbre.errors import ConfigError
from timbre.store import Record, VectorStore

VOCABULARY_FILE = Path(__file__).resolve().parents[2] / "config" / "labels.yaml"
"""The vocabulary shipped with the source tree (``labels.vocabulary: null`` uses it)."""

LabelKind = Literal["category", "character"]


@dataclass(frozen=True)
class Label:
    """One label: its payload name (``kick``, ``warm``), ``category`` (at most one per sample)
    or ``character`` (auto tags only), the prompts averaged for it, and for a category the
    ``instrument`` it stands for."""

    name: str
    kind: LabelKind
    prompts: tuple[str, ...]
    instrument: str | None = None


class _Category(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompts: list[str] = Field(min_length=1)
    instrument: str | None = None


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1)
    categories: dict[str, _Category] = Field(min_length=2)
    character: dict[str, list[str]] = Field(default_factory=dict)


@dataclass(frozen=True)
class Vocabulary:
    """Every label, categories first, in file order."""

    labels: tuple[Label, ...]
    source: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(label.name for label in self.labels)

    def prompt_hash(self, *, instruments: bool = False) -> str:
        """SHA-256 of the labels and their prompts (what the label vectors depend on), with
        ``instruments`` of everything in the vocabulary."""
        material = [
            [lb.name, lb.kind, list(lb.prompts), *([lb.instrument] if instruments else [])]
            for lb in self.labels
        ]
        return hashlib.sha256(json.dumps(material, ensure_ascii=False).encode()).hexdigest()


def load_vocabulary(path: Path | None = None) -> Vocabulary:
    """Read and check a vocabulary file (the shipped one if ``path`` is None); ConfigError
    names what is wrong (names must be unique: they are what payloads say)."""
    path = path or VOCABULARY_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the label vocabulary {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    try:
        parsed = _File.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid label vocabulary {path}: {problems}") from exc
    labels = [
        Label(name.strip(), "category", tuple(c.prompts), c.instrument)
        for name, c in parsed.categories.items()
    ]
    labels += [
        Label(name.strip(), "character", tuple(prompts))
        for name, prompts in parsed.character.items()
    ]
    seen: set[str] = set()
    for label in labels:
        if not label.name:
            raise ConfigError(f"{path}: a label has an empty name")
        if label.name.casefold() in seen:
            raise ConfigError(f"{path}: the label {label.name!r} is defined twice")
        seen.add(label.name.casefold())
        if not label.prompts or any(not p.strip() for p in label.prompts):
            raise ConfigError(f"{path}: the label {label.name!r} has an empty prompt")
    return Vocabulary(tuple(labels), str(path))


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
    """Scores vectors against a vocabulary's label vectors (``[n_labels, dim]``, unit rows,
    in vocabulary order) and applies :class:`LabelRules`. ``text_model``: the tower that
    embedded them, recorded in ``labels_version``."""

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
        material = json.dumps([vocabulary.prompt_hash(instruments=True), asdict(rules), text_model])
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
        """The payload fields for ``labels``; an instrument the names gave in ``stored``
        (source ``name``, or any instrument without a source) is never replaced."""
        out: dict[str, Any] = {
            "category": labels.category,
            "category_score": labels.category_score,
            "auto_tags": list(labels.auto_tags),
            "auto_tag_scores": dict(labels.auto_tag_scores),
            "labels_version": self.version,
        }
        if not named_instrument(stored):
            instrument = self.instrument_of(labels.category)
            out["instrument"] = instrument
            out["instrument_source"] = "audio" if instrument else None
        return out


def named_instrument(payload: Mapping[str, Any]) -> bool:
    """Whether the payload's instrument came from the names (source ``name``, or any instrument
    of a point stored before sources were recorded): labels never replace it."""
    source = payload.get("instrument_source")
    return source == "name" or (source is None and bool(payload.get("instrument")))


# fmt: off
_READ = (
    "instrument", "instrument_source", "category", "category_score", "auto_tags",
    "auto_tag_scores", "labels_version",
)
# fmt: on


@dataclass
class RelabelReport:
    """What a relabel did. ``best_scores`` and ``margins``: quantiles of each point's best
    category cosine and its lead over the runner-up, to calibrate the thresholds."""

    points: int = 0
    changed: int = 0
    with_category: int = 0
    with_auto_tags: int = 0
    categories: dict[str, int] = field(default_factory=dict)
    best_scores: dict[str, float] = field(default_factory=dict)
    margins: dict[str, float] = field(default_factory=dict)
    labels_version: str = ""
    seconds: float = 0.0
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def relabel(
    store: VectorStore,
    labeller: Labeller,
    *,
    batch_size: int,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> RelabelReport:
    """Label every point of the live collection anew from its stored vector; ``progress`` is
    called with the points done after each page of ``batch_size``."""
    started = time.perf_counter()
    report = RelabelReport(labels_version=labeller.version, dry_run=dry_run)
    categories: Counter[str] = Counter()
    best: list[float] = []
    margins: list[float] = []

    def revise(page: list[Record]) -> dict[str, dict[str, Any]]:
        vectors = np.stack([np.asarray(r.vector, dtype=np.float32) for r in page])
        updates: dict[str, dict[str, Any]] = {}
        for record, labels in zip(page, labeller.label(vectors), strict=True):
            fields = labeller.fields(labels, record.payload)
            if any(record.payload.get(k) != v for k, v in fields.items()):
                updates[record.id] = fields
            best.append(labels.best_score)
            margins.append(labels.margin)
            if labels.category:
                categories[labels.category] += 1
            report.with_auto_tags += bool(labels.auto_tags)
        return updates

    done = store.live().rewrite_payloads(
        revise,
        fields=_READ,
        batch_size=batch_size,
        with_vectors=True,
        dry_run=dry_run,
        progress=progress,
    )
    report.points, report.changed = done.points, done.changed
    if not dry_run:
        store.live().write_labels_version(labeller.version)
    report.with_category = sum(categories.values())
    report.categories = dict(categories.most_common())
    report.best_scores = _quantiles(best)
    report.margins = _quantiles(margins)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    q = np.quantile(np.asarray(values), [0.0, 0.1, 0.5, 0.9, 1.0])
    names = ("min", "p10", "p50", "p90", "max")
    return {k: round(float(v), 4) for k, v in zip(names, q, strict=True)}
