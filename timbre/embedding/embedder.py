"""The entry points: describe, load the audio side, load the text side of ``models.family``.

Both sides return L2-normalised float32 vectors in the family's shared space, so cosine
similarity is a dot product. Imports neither torch nor onnxruntime.
"""

from __future__ import annotations

from timbre.embedding.family import AudioSide, Family, TextEmbedder
from timbre.embedding.files import ModelFiles, resolve_model_files
from timbre.embedding.info import ModelInfo
from timbre.errors import ConfigError
from timbre.settings_models import ModelsSettings

FAMILY_NAMES = ("clamp3", "clap")


def get_family(name: str) -> Family:
    """The family called ``name``, imported on first use (clap loads nothing of clamp3's);
    ConfigError if there is none."""
    if name == "clamp3":
        from timbre.embedding.clamp3 import CLAMP3

        return CLAMP3
    if name == "clap":
        from timbre.embedding.clap import CLAP

        return CLAP
    raise ConfigError(f"unknown model family {name!r}; models.family is one of {FAMILY_NAMES}")


def describe_models(settings: ModelsSettings, files: ModelFiles | None = None) -> ModelInfo:
    """The identity of the configured models without loading them."""
    family = get_family(settings.family)
    return family.describe(settings, files or resolve_model_files(settings, family.audio_parts))


def load_audio_embedder(
    settings: ModelsSettings, files: ModelFiles | None = None, *, batches: bool = True
) -> AudioSide:
    """Load the configured family's audio path (not its text tower: ingest never needs it).

    ``batches``: calls will carry many files' audio (a parallel ingest job), which sets how
    the family spreads its work over the cores (clamp3: ``models.mert_streams: auto``).
    Raises ModelFilesError for a bad model file, ConfigError for a runtime the device lacks.
    """
    family = get_family(settings.family)
    return family.load_audio(
        settings, files or resolve_model_files(settings, family.audio_parts), batches
    )


def load_text_embedder(settings: ModelsSettings, files: ModelFiles | None = None) -> TextEmbedder:
    """Load the configured family's tokenizer and text tower (raises as above)."""
    family = get_family(settings.family)
    return family.load_text(settings, files or resolve_model_files(settings, family.text_parts))
