"""The clap family on ONNX Runtime: its two graphs as export specs, and their runtime classes.

The gate is the family-neutral one (:mod:`timbre.embedding.onnx_backend`): each graph is
adopted only if it agrees with PyTorch on probe inputs to ``models.onnx_min_cosine``. Probes:
the log-mels of the probe clips' windows (one window again at every warm load, since a 10 s
window is the unit of cost), and the probe texts plus one past the position limit. No torch at
module level: a warm start runs on onnxruntime, numpy and ``tokenizers`` alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from timbre.embedding.clap_audio import ClapPolicy, FrontEnd
from timbre.embedding.clap_text import ClapTokens
from timbre.embedding.common import PROBE_TEXTS, probe_waveforms
from timbre.embedding.files import CLAP_WEIGHT_FILES, ModelFiles
from timbre.embedding.onnx_backend import Spec, ort_threads
from timbre.errors import ModelFilesError
from timbre.settings import ModelsSettings

LONG_PROBE_TEXT = "a long description of a drum loop with many words " * 60
"""Past the 512-token position limit: the truncation path."""


class OrtClapAudioTower:
    """Log-mel windows -> projected vectors, as :class:`~.clap_eager.ClapAudioTower`."""

    def __init__(self, graph: Any, dim: int) -> None:
        self.graph = graph
        self.dim = dim

    @classmethod
    def load(cls, path: Path, dims: dict[str, int], threads: int) -> OrtClapAudioTower:
        from timbre.embedding.ort_runtime import Graph

        return cls(Graph(path, threads, ("mels",)), int(dims["dim"]))

    def encode(self, mels: Sequence[np.ndarray], max_batch: int) -> np.ndarray:
        out = [
            self.graph(mels=np.stack(mels[i : i + max_batch])[:, None].astype(np.float32))
            for i in range(0, len(mels), max_batch)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


class OrtClapTextTower:
    """Texts -> projected vectors, as :class:`~.clap_eager.ClapTextTower`."""

    def __init__(self, graph: Any, tokens: ClapTokens, dim: int) -> None:
        self.graph = graph
        self.tokens = tokens
        self.dim = dim

    @classmethod
    def load(cls, path: Path, dims: dict[str, int], folder: Path, threads: int) -> OrtClapTextTower:
        from timbre.embedding.ort_runtime import Graph

        graph = Graph(path, threads, ("input_ids", "attention_mask"))
        return cls(graph, ClapTokens.load(folder), int(dims["dim"]))

    def encode(self, texts: Sequence[str], max_batch: int) -> np.ndarray:
        out = []
        for start in range(0, len(texts), max_batch):
            ids, mask = self.tokens.batch(list(texts[start : start + max_batch]))
            out.append(self.graph(input_ids=ids, attention_mask=mask))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


def _weights(folder: Path) -> Path:
    found = next((folder / n for n in CLAP_WEIGHT_FILES if (folder / n).is_file()), None)
    if found is None:
        raise ModelFilesError(f"{folder} holds none of {', '.join(CLAP_WEIGHT_FILES)}")
    return found


def audio_spec(settings: ModelsSettings, files: ModelFiles) -> Spec:
    folder = files.require("clap")
    front = FrontEnd.load(folder, ClapPolicy())
    batch = settings.clap.batch_windows.cpu
    threads = ort_threads(settings)

    def load_eager() -> Any:
        from timbre.embedding.clap_eager import cpu_audio_tower

        return cpu_audio_tower(settings, folder)

    def export(tower: Any, target: Path) -> Path:
        from timbre.embedding.clap_export import export_audio

        frames = front.window_samples // front.hop + 1
        return export_audio(tower, frames, front.mel_filters.shape[1], target)

    def probes(dims: dict[str, int], reload: bool) -> list[np.ndarray]:
        waves = probe_waveforms(front.sample_rate)
        mels = [front.log_mel(w) for wave in waves for w in front.windows(wave)]
        return mels[:1] if reload else mels

    return Spec(
        kind="clap_audio",
        name="CLAP audio tower",
        sources=[_weights(folder), folder / "config.json"],
        load_eager=load_eager,
        export=export,
        dims=lambda t: {"dim": int(t.dim)},
        load_ort=lambda path, dims: OrtClapAudioTower.load(path, dims, threads),
        probes=probes,
        run=lambda tower, mels: tower.encode(mels, batch),
    )


def text_spec(settings: ModelsSettings, files: ModelFiles) -> Spec:
    folder = files.require("clap")
    batch = settings.clap.batch_texts.cpu
    threads = ort_threads(settings)

    def load_eager() -> Any:
        from timbre.embedding.clap_eager import cpu_text_tower

        return cpu_text_tower(settings, folder)

    def export(tower: Any, target: Path) -> Path:
        from timbre.embedding.clap_export import export_text

        return export_text(tower, target)

    return Spec(
        kind="clap_text",
        name="CLAP text tower",
        sources=[_weights(folder), folder / "config.json", folder / "tokenizer.json"],
        load_eager=load_eager,
        export=export,
        dims=lambda t: {"dim": int(t.dim)},
        load_ort=lambda path, dims: OrtClapTextTower.load(path, dims, folder, threads),
        probes=lambda dims, reload: [*PROBE_TEXTS] if reload else [*PROBE_TEXTS, LONG_PROBE_TEXT],
        run=lambda tower, texts: tower.encode(texts, batch),
    )
