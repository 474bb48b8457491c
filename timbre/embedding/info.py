"""Identity of the models and pipeline behind a vector (no torch: stores and the API read it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from timbre.audio.windows import PIPELINE_VERSION
from timbre.embedding.files import ModelFiles


@dataclass(frozen=True)
class ModelInfo:
    """Which models and pipeline produced a vector; travels into payloads and manifests.

    Attributes:
        mert: ``repo@revision`` of MERT.
        clamp3: ``repo@revision/filename`` of the CLaMP3 checkpoint.
        xlmr: ``repo@revision`` of the tokenizer and text config.
        dim: embedding dimension.
        pipeline_version: see :data:`timbre.audio.windows.PIPELINE_VERSION`.
        random_weights: True for bundles made by ``timbre models random``.
    """

    mert: str
    clamp3: str
    xlmr: str
    dim: int
    pipeline_version: str = PIPELINE_VERSION
    random_weights: bool = False

    @classmethod
    def from_files(cls, files: ModelFiles, clamp3_filename: str, dim: int) -> ModelInfo:
        s = files.sources
        return cls(
            mert=s["mert"].ref(),
            clamp3=f"{s['clamp3'].ref()}/{clamp3_filename}",
            xlmr=s["xlmr"].ref(),
            dim=dim,
            random_weights=files.random_weights,
        )

    def audio_key(self) -> dict[str, Any]:
        """What audio vectors depend on; stored vectors must match it to be comparable."""
        return {
            "mert": self.mert,
            "clamp3": self.clamp3,
            "pipeline_version": self.pipeline_version,
            "dim": self.dim,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "mert": self.mert,
            "clamp3": self.clamp3,
            "xlmr": self.xlmr,
            "dim": self.dim,
            "pipeline_version": self.pipeline_version,
            "random_weights": self.random_weights,
        }
