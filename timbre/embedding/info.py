"""Identity of the models and pipeline behind a vector (no torch: stores and the API read it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from timbre.audio.windows import PIPELINE_VERSION
from timbre.embedding.files import ModelFiles

DEFAULT_FAMILY = "clamp3"

FAMILY_TITLES = {"clamp3": "MERT → CLaMP3", "clap": "LAION-CLAP"}
"""How the page and the API name each family to a person (``models.family`` is the key)."""


@dataclass(frozen=True)
class ModelInfo:
    """Which family, models and pipeline produced a vector; travels into payloads and manifests.
    Each model field is its ``repo@revision``; the other family's fields are empty."""

    mert: str
    clamp3: str
    xlmr: str
    dim: int
    pipeline_version: str = PIPELINE_VERSION
    random_weights: bool = False
    family: str = DEFAULT_FAMILY
    clap: str = ""

    @classmethod
    def from_files(cls, files: ModelFiles, clamp3_filename: str, dim: int) -> ModelInfo:
        """The clamp3 family's identity."""
        s = files.sources
        return cls(
            mert=s["mert"].ref(),
            clamp3=f"{s['clamp3'].ref()}/{clamp3_filename}",
            xlmr=s["xlmr"].ref(),
            dim=dim,
            random_weights=files.random_weights,
        )

    @classmethod
    def for_clap(cls, files: ModelFiles, dim: int, pipeline_version: str) -> ModelInfo:
        """The clap family's identity."""
        return cls(
            mert="",
            clamp3="",
            xlmr="",
            dim=dim,
            pipeline_version=pipeline_version,
            random_weights=files.random_weights,
            family="clap",
            clap=files.sources["clap"].ref(),
        )

    def models(self) -> dict[str, str]:
        """``part -> repo@revision`` of the family's models."""
        if self.family == DEFAULT_FAMILY:
            return {"mert": self.mert, "clamp3": self.clamp3, "xlmr": self.xlmr}
        return {self.family: self.clap}

    @property
    def title(self) -> str:
        """The family's name for people, e.g. ``LAION-CLAP``."""
        return FAMILY_TITLES.get(self.family, self.family)

    @property
    def text_model(self) -> str:
        """Identity of the text tower (what label vectors depend on)."""
        return self.clamp3 if self.family == DEFAULT_FAMILY else self.clap

    def audio_key(self) -> dict[str, Any]:
        """What audio vectors depend on; stored vectors must match it to be comparable. The
        clamp3 key has no ``family`` entry, so collections from before families stay live."""
        if self.family == DEFAULT_FAMILY:  # the text side (xlmr) does not touch audio vectors
            key: dict[str, Any] = {"mert": self.mert, "clamp3": self.clamp3}
        else:
            key = {"family": self.family, **self.models()}
        return {**key, "pipeline_version": self.pipeline_version, "dim": self.dim}

    def as_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            **self.models(),
            "dim": self.dim,
            "pipeline_version": self.pipeline_version,
            "random_weights": self.random_weights,
        }


def family_of_key(audio_key: dict[str, Any] | None) -> str:
    """The family recorded in a stored audio key (clamp3 when none is)."""
    return str((audio_key or {}).get("family", DEFAULT_FAMILY))
