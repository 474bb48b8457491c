"""The two embedding paths Timbre serves: audio -> vector and text -> vector.

Both return L2-normalised float32 vectors in the configured family's shared space, so cosine
similarity is a dot product (Qdrant Cosine and FAISS inner product agree). The families are
behind :mod:`timbre.embedding.families`; this module only picks the configured one, and
imports neither torch nor onnxruntime itself.
"""

from __future__ import annotations

from timbre.embedding.clamp3_embedder import AudioEmbedder
from timbre.embedding.common import (
    PROBE_TEXTS,
    TextEmbedder,
    l2_normalize,
    probe_waveforms,
)
from timbre.embedding.families import get_family
from timbre.embedding.family import AudioSide
from timbre.embedding.files import ModelFiles, resolve_model_files
from timbre.embedding.info import ModelInfo
from timbre.settings import ModelsSettings


def describe_models(settings: ModelsSettings, files: ModelFiles | None = None) -> ModelInfo:
    """The identity of the configured models without loading them."""
    family = get_family(settings.family)
    return family.describe(settings, files or resolve_model_files(settings, family.audio_parts))


def load_audio_embedder(
    settings: ModelsSettings, files: ModelFiles | None = None, *, batches: bool = True
) -> AudioSide:
    """Load the configured family's audio path (not its text tower: ingest never needs it).

    ``batches``: calls will carry many files' audio (a parallel ingest job), which sets how
    each family spreads its work over the cores (for clamp3, ``models.mert_streams: auto``).

    Raises:
        ModelFilesError: a model file is missing, malformed or inconsistent.
        ConfigError: the configured runtime cannot run on the device.
    """
    family = get_family(settings.family)
    files = files or resolve_model_files(settings, family.audio_parts)
    return family.load_audio(settings, files, batches)


def load_text_embedder(settings: ModelsSettings, files: ModelFiles | None = None) -> TextEmbedder:
    """Load the configured family's tokenizer and text tower.

    Raises:
        ModelFilesError: a model file is missing, malformed or inconsistent.
        ConfigError: the configured runtime cannot run on the device.
    """
    family = get_family(settings.family)
    return family.load_text(settings, files or resolve_model_files(settings, family.text_parts))


__all__ = [
    "PROBE_TEXTS",
    "AudioEmbedder",
    "AudioSide",
    "ModelInfo",
    "TextEmbedder",
    "describe_models",
    "l2_normalize",
    "load_audio_embedder",
    "load_text_embedder",
    "probe_waveforms",
]
