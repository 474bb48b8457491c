"""Zero-shot labels from the sound: ``category`` and ``auto_tags`` from the shared text–audio
space, re-derivable at any time from the stored vectors.

A configurable vocabulary (``config/labels.yaml``) is embedded once with the CLaMP3 text tower
(:mod:`timbre.labels.vectors`, cached by text model and prompts); a :class:`Labeller` scores
each sample's vector against it by cosine and applies the rules of the ``labels`` settings;
:func:`relabel` re-labels a whole collection from its stored vectors without re-embedding.
"""

from timbre.labels.labeller import Labeller, LabelRules, Labels
from timbre.labels.relabel import RelabelReport, relabel
from timbre.labels.vectors import build_labeller, label_vectors, make_labeller
from timbre.labels.vocabulary import Label, Vocabulary, load_vocabulary

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
