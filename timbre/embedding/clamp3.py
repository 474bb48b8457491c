"""The clamp3 family: MERT-v1-95M features, then the CLaMP3 (SAAS) audio and text towers.

The original pipeline, reproducing the reference to the letter (``docs/model-spec.md``). Its
parts: :mod:`clamp3_embedder` (the audio path), :mod:`clamp3_eager` (PyTorch),
:mod:`clamp3_onnx` (ONNX Runtime graphs), :mod:`mert` and :mod:`towers` (the models),
:mod:`random_bundle` (random weights). Importing this module imports no torch.
"""

from __future__ import annotations

import json
from pathlib import Path

from timbre.audio.resample import Resampler
from timbre.audio.windows import PIPELINE_VERSION
from timbre.embedding import onnx_backend as onnx
from timbre.embedding.clamp3_embedder import AudioEmbedder
from timbre.embedding.common import TextEmbedder
from timbre.embedding.family import Side, Size
from timbre.embedding.files import ALL_PARTS, ModelFiles, Part
from timbre.embedding.info import ModelInfo
from timbre.embedding.onnx_backend import Spec
from timbre.errors import ModelFilesError
from timbre.settings import ModelsSettings


class Clamp3Family:
    """MERT -> CLaMP3 (see the module docstring)."""

    name = "clamp3"
    parts: tuple[Part, ...] = ALL_PARTS
    audio_parts: tuple[Part, ...] = ("mert", "clamp3")
    text_parts: tuple[Part, ...] = ("xlmr", "clamp3")
    pipeline_version = PIPELINE_VERSION
    sample_rate = 24_000  # MERT-v1-95M's rate; the loaded model's config is what counts

    def describe(self, settings: ModelsSettings, files: ModelFiles) -> ModelInfo:
        """The dimension comes from a cached export's manifest when there is one (no torch),
        else from the checkpoint, memory-mapped through torch."""
        from timbre.embedding.clamp3_onnx import cached_dim

        dim = None
        if "onnxruntime" in (
            onnx.choose_runtime(settings, "text"),
            onnx.choose_runtime(settings, "audio"),
        ):
            dim = cached_dim(settings, files)
        if dim is None:
            from timbre.embedding.towers import Clamp3Checkpoint

            dim = Clamp3Checkpoint(files.require("clamp3")).embedding_dim()
        return ModelInfo.from_files(files, settings.clamp3.filename, dim)

    def decoding(self, files: ModelFiles) -> tuple[int, Resampler]:
        """MERT's input rate (from its config), reached with the reference's sinc filter."""
        config = files.require("mert") / "config.json"
        try:
            rate = int(json.loads(config.read_text(encoding="utf-8"))["sample_rate"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelFilesError(f"cannot read MERT's sample_rate from {config}: {exc}") from exc
        return rate, "sinc"

    def load_audio(
        self, settings: ModelsSettings, files: ModelFiles, batches: bool
    ) -> AudioEmbedder:
        if onnx.choose_runtime(settings, "audio") == "torch":
            from timbre.embedding import clamp3_eager

            return clamp3_eager.load_audio(settings, files)
        cache = onnx.export_cache(settings)
        min_cos = settings.onnx_min_cosine
        mert_spec, tower_spec = self._audio_specs(settings, files, batches)
        mert, mert_rt = onnx.load_component(cache, mert_spec, min_cos)
        tower, tower_rt = onnx.load_component(cache, tower_spec, min_cos)
        if mert.hidden_size != tower.input_dim:
            raise ModelFilesError(
                f"MERT gives {mert.hidden_size}-d vectors but the CLaMP3 audio tower takes "
                f"{tower.input_dim}-d input: the MERT and CLaMP3 files do not belong together"
            )
        runtime = mert_rt if mert_rt == tower_rt else f"mert={mert_rt}, tower={tower_rt}"
        return AudioEmbedder(
            mert,
            tower,
            ModelInfo.from_files(files, settings.clamp3.filename, tower.dim),
            settings.mert_batch_windows.cpu,
            settings.tower_batch_segments.cpu,
            runtime=runtime,
        )

    def load_text(self, settings: ModelsSettings, files: ModelFiles) -> TextEmbedder:
        if onnx.choose_runtime(settings, "text") == "torch":
            from timbre.embedding import clamp3_eager

            return clamp3_eager.load_text(settings, files)
        (spec,) = self.export_specs(settings, files, "text")
        tower, runtime = onnx.load_component(
            onnx.export_cache(settings), spec, settings.onnx_min_cosine
        )
        return TextEmbedder(
            tower,
            ModelInfo.from_files(files, settings.clamp3.filename, tower.dim),
            settings.tower_batch_segments.cpu,
            runtime=runtime,
        )

    def write_random(self, target: Path, size: Size, seed: int) -> None:
        from timbre.embedding.random_bundle import write_random_bundle

        write_random_bundle(target, size, seed=seed)

    def export_specs(self, settings: ModelsSettings, files: ModelFiles, side: Side) -> list[Spec]:
        from timbre.embedding import clamp3_onnx

        if side == "text":
            return [clamp3_onnx.text_spec(settings, files)]
        return list(self._audio_specs(settings, files, True))

    def _audio_specs(
        self, settings: ModelsSettings, files: ModelFiles, batches: bool
    ) -> tuple[Spec, Spec]:
        from timbre.embedding import clamp3_onnx

        return (
            clamp3_onnx.mert_spec(settings, files, batches),
            clamp3_onnx.audio_tower_spec(settings, files),
        )


CLAMP3 = Clamp3Family()
