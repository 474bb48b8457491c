"""Zero-shot labels from the sound: ``category`` and ``auto_tags`` from the shared text-audio
space. The vocabulary (``config/labels.yaml``) is embedded once with the text tower (cached);
a :class:`Labeller` scores vectors against it; :func:`relabel` re-labels a whole collection
from its stored vectors.
"""

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
