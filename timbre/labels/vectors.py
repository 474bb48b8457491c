"""Label vectors: the vocabulary embedded once with the text tower, cached on disk by the text
model and the prompts (the tower loads only on a cache miss)."""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from timbre.embedding.info import DEFAULT_FAMILY, ModelInfo
from timbre.errors import ConfigError
from timbre.fsutil import replacing
from timbre.labels.labeller import Labeller, LabelRules, Vocabulary, load_vocabulary

if TYPE_CHECKING:
    from timbre.settings import Settings

log = logging.getLogger(__name__)

CACHE_DIR = Path("cache") / "labels"
"""Under ``data_dir``."""


class TextSide(Protocol):
    """What labelling needs from the text embedder (``embedding.family.TextEmbedder``)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def cache_key(vocabulary: Vocabulary, info: ModelInfo) -> str:
    if info.family == DEFAULT_FAMILY:  # the key label caches had before families existed
        parts: list[object] = [vocabulary.prompt_hash(), info.clamp3, info.xlmr, info.dim]
    else:
        parts = [vocabulary.prompt_hash(), info.family, info.text_model, info.dim]
    material = json.dumps(parts, ensure_ascii=False)
    return hashlib.sha256(material.encode()).hexdigest()[:20]


def embed_vocabulary(vocabulary: Vocabulary, text: TextSide) -> np.ndarray:
    """``[n_labels, dim]``: each label's prompts embedded, averaged and L2-normalised."""
    prompts = [p for label in vocabulary.labels for p in label.prompts]
    vectors = np.asarray(text.embed(prompts), dtype=np.float32)
    out, start = [], 0
    for label in vocabulary.labels:
        mean = vectors[start : start + len(label.prompts)].mean(axis=0)
        start += len(label.prompts)
        out.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
    return np.stack(out).astype(np.float32)


def label_vectors(
    vocabulary: Vocabulary,
    info: ModelInfo,
    cache_dir: Path | None,
    text: Callable[[], TextSide],
    *,
    free_text: bool,
) -> np.ndarray:
    """The vocabulary's vectors, from ``cache_dir`` (None: no cache) or from the embedder
    ``text()`` returns on a miss; ``free_text`` frees that embedder's memory afterwards."""
    path = cache_dir / f"{cache_key(vocabulary, info)}.npz" if cache_dir else None
    if path is not None and path.exists():
        cached = _cached_vectors(path, vocabulary, info)
        if cached is not None:
            return cached
    embedder = text()
    vectors = embed_vocabulary(vocabulary, embedder)
    if free_text:
        from timbre.embedding.runtime import release_memory  # torch is loaded by now anyway

        del embedder
        gc.collect()
        release_memory()
    if vectors.shape[1] != info.dim:
        raise ConfigError(f"label vectors are {vectors.shape[1]}-d, the models {info.dim}-d")
    if path is not None:
        with replacing(path, mkdir=True) as tmp, tmp.open("wb") as out:
            np.savez(out, vectors=vectors, names=np.array(vocabulary.names))
    return vectors


def _cached_vectors(path: Path, vocabulary: Vocabulary, info: ModelInfo) -> np.ndarray | None:
    """The cached vectors if the file is whole (zip CRCs) and holds one unit row per label of
    the vocabulary, else None: a damaged cache would label every sample wrongly."""
    try:
        with np.load(path, allow_pickle=False) as cached:
            names = tuple(str(n) for n in cached["names"])
            vectors = np.asarray(cached["vectors"], dtype=np.float32)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("ignoring the damaged label vector cache %s (%s): embedding again", path, exc)
        return None
    if names != vocabulary.names:
        return None  # another vocabulary under a colliding key: embed this one
    norms = np.linalg.norm(vectors, axis=1) if vectors.ndim == 2 else np.zeros(0)
    if vectors.shape != (len(names), info.dim) or not np.allclose(norms, 1.0, atol=1e-3):
        log.warning(
            "ignoring the label vector cache %s: not one unit %d-d vector per label "
            "(shape %s); embedding again",
            path,
            info.dim,
            vectors.shape,
        )
        return None
    return vectors


def rules_of(settings: Settings, family: str | None = None) -> LabelRules:
    """The ``labels`` rules, with the thresholds of ``family`` (``models.family`` if None)."""
    s = settings.labels
    limits = s.thresholds(family or settings.models.family)
    return LabelRules(
        category_min_cosine=limits.category_min_cosine,
        category_min_margin=limits.category_min_margin,
        tag_min_cosine=limits.tag_min_cosine,
        max_auto_tags=s.max_auto_tags,
    )


def build_labeller(
    settings: Settings,
    info: ModelInfo,
    text: Callable[[], TextSide],
    *,
    free_text: bool,
    vocabulary: Vocabulary | None = None,
) -> Labeller | None:
    """The labeller the settings ask for at ingest, or None when ``labels.enabled`` is false."""
    if not settings.labels.enabled:
        return None
    return make_labeller(settings, info, text, free_text=free_text, vocabulary=vocabulary)


def make_labeller(
    settings: Settings,
    info: ModelInfo,
    text: Callable[[], TextSide],
    *,
    free_text: bool,
    vocabulary: Vocabulary | None = None,
) -> Labeller:
    """A labeller for ``vocabulary`` (``labels.vocabulary`` if None) and the ``labels`` rules
    (``text`` and ``free_text`` as :func:`label_vectors`)."""
    vocabulary = vocabulary or load_vocabulary(settings.labels.vocabulary)
    vectors = label_vectors(
        vocabulary, info, settings.data_dir / CACHE_DIR, text, free_text=free_text
    )
    return Labeller(vocabulary, vectors, rules_of(settings, info.family), info.text_model)
