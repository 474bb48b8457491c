"""Zero-shot labels from the sound: ``category`` and ``auto_tags`` from the shared text-audio
space, scored against the vocabulary's cached text vectors."""

from timbre.labels.labeller import (
    Label,
    Labeller,
    LabelRules,
    Labels,
    RelabelReport,
    Vocabulary,
    load_vocabulary,
    relabel,
)
from timbre.labels.vectors import build_labeller, label_vectors, make_labeller

__all__ = [
    "Label",
    "LabelRules",
    "Labeller",
    "Labels",
    "RelabelReport",
    "Vocabulary",
    "build_labeller",
    "label_vectors",
    "load_vocabulary",
    "make_labeller",
    "relabel",
]
