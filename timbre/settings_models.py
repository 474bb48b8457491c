"""The ``models`` section of the settings (where the weights come from and how they run), and
the frozen base every section of :class:`timbre.settings.Settings` is built on."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Section(BaseModel):
    """A settings section: unknown keys are errors, values are frozen, field docstrings are
    the descriptions in docs/settings.md."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class HubModel(Section):
    """A model repository on the Hugging Face hub, at a pinned revision."""

    repo: str
    """Repository id on the hub."""
    revision: str = Field(min_length=1)
    """Commit or branch; `timbre models download` records the commit it resolved."""


class Clamp3Hub(HubModel):
    filename: str
    """The checkpoint file Timbre uses, by its official name."""


class PerDevice(Section):
    """One count per kind of device: what fits and pays off differs by an order of magnitude."""

    cpu: int = Field(ge=1)
    cuda: int = Field(ge=1)

    @model_validator(mode="before")
    @classmethod
    def _one_for_both(cls, value: Any) -> Any:
        """A single number (``TIMBRE_INGEST__BATCH_FILES=4``) sets both devices."""
        if isinstance(value, int | str) and not isinstance(value, bool):
            return {"cpu": value, "cuda": value}
        return value

    def on(self, device_type: str) -> int:
        """The value for a torch device type (``cpu`` or ``cuda``)."""
        return self.cuda if device_type == "cuda" else self.cpu


class ClapHub(HubModel):
    short_clip: Literal["repeatpad", "pad"]
    """Under 10 s a clip is tiled to fill the window (repeatpad, as trained) or zero-padded."""
    long_clip: Literal["mean", "first"]
    """Over 10 s: the mean of evenly spaced 10 s windows (the whole loop counts), or the first."""
    max_windows: int = Field(ge=1)
    """Most 10 s windows per clip under long_clip mean (18 cover 3 minutes)."""
    batch_windows: PerDevice
    """10 s windows per audio-encoder pass: more buy nothing on a CPU; a GPU wants them wide."""
    batch_texts: PerDevice
    """Texts per forward pass of the text encoder: one batch for a typical label vocabulary."""


REMOVED_MODELS_KEYS = ("text_precision", "audio_precision", "precision_min_cosine")
"""Settings of the reduced-precision path, which is gone: ignored, with a warning, for a release."""


class ModelsSettings(Section):
    """Where the weights come from and how they run."""

    @model_validator(mode="before")
    @classmethod
    def _drop_removed(cls, data: Any) -> Any:
        if isinstance(data, dict) and (gone := [k for k in REMOVED_MODELS_KEYS if k in data]):
            logging.getLogger(__name__).warning(
                "models.%s: no longer a setting (the models always run in fp32); ignored",
                ", models.".join(gone),
            )
            return {k: v for k, v in data.items() if k not in REMOVED_MODELS_KEYS}
        return data

    family: Literal["clamp3", "clap"]
    """The model family of every vector in this data dir: clamp3 (MERT -> CLaMP3; MERT's
    weights are CC-BY-NC-4.0) or clap (LAION-CLAP, Apache-2.0, general sound as well as music).
    Switching builds a new collection on the next ingest (docs/model-families.md)."""
    bundle: Path | None
    """Local folder of the official model files (mert/, xlmr/, clamp3/ and/or clap/), for
    air-gapped installs and images. null = the Hugging Face hub at the revisions below."""
    hub_connect_timeout_s: float = Field(gt=0.0)
    """Seconds for one connection to the hub before falling back to the local hub cache."""
    mert: HubModel
    """MERT-v1-95M, the audio feature model CLaMP3 (SAAS) was trained on."""
    clamp3: Clamp3Hub
    """CLaMP3 and its SAAS checkpoint (optimised for audio)."""
    xlmr: HubModel
    """The tokenizer and config of CLaMP3's text tower (its weights are in the CLaMP3 file)."""
    clap: ClapHub
    """The clap family's checkpoint, in transformers' ClapModel layout."""
    device: Literal["auto", "cpu", "cuda"]
    """auto = cuda when a GPU is visible, else cpu."""
    threads: int = Field(ge=0)
    """Intra-op threads of the models. 0 = every core this process may run on."""
    mert_batch_windows: PerDevice
    """MERT windows per pass (equal lengths only): no gain on a CPU, ~100 MB each; a GPU: wide."""
    mert_streams: Literal["auto"] | Annotated[int, Field(ge=1)]
    """MERT passes in flight at once on ONNX Runtime, each on threads/streams threads (results
    are bitwise the same). auto = one pass per thread in parallel-profile jobs (faster on short
    windows), one pass on every thread where calls carry one file (service, sequential)."""
    tower_batch_segments: PerDevice
    """CLaMP3 tower segments per forward pass: segments of one-shots are short, batches cheap."""
    runtime: Literal["auto", "torch", "onnxruntime"]
    """What runs the models. auto = ONNX Runtime on a CPU (several times faster than PyTorch
    eager), PyTorch on a GPU; exported graphs are used only if they agree to onnx_min_cosine."""
    export_dir: Path | None
    """Folder of the exported ONNX graphs (~1.9 GB), shareable. null = <data_dir>/cache/onnx."""
    onnx_min_cosine: float = Field(gt=0.0, le=1.0)
    """Least cosine between ONNX Runtime and PyTorch outputs on the probes."""
