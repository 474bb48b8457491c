"""The clap family on ONNX Runtime: its two towers as gated exports and their runtime classes.

Probes: the log-mels of the probe clips' windows (one window again at every warm load: a
10 s window is the unit of cost), and the probe texts plus one past the position limit. No
torch here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from timbre.embedding.clap_inputs import ClapPolicy, ClapTokens, FrontEnd
from timbre.embedding.family import PROBE_TEXTS, probe_waveforms
from timbre.embedding.files import CLAP_WEIGHT_FILES, ModelFiles, first_file
from timbre.embedding.onnx_backend import Graph, Spec, ort_threads
from timbre.embedding.runtime import configure_threads
from timbre.settings import ModelsSettings

LONG_PROBE_TEXT = "a long description of a drum loop with many words " * 60
"""Past the 512-token position limit: the truncation path."""


class OrtClapAudioTower:
    """Log-mel windows -> projected vectors, as ``ClapAudioTower``."""

    def __init__(self, graph: Graph, dim: int) -> None:
        self.graph = graph
        self.dim = dim

    def encode(self, mels: Sequence[np.ndarray], max_batch: int) -> np.ndarray:
        out = [
            self.graph(mels=np.stack(mels[i : i + max_batch])[:, None].astype(np.float32))
            for i in range(0, len(mels), max_batch)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


class OrtClapTextTower:
    """Texts -> projected vectors, as ``ClapTextTower``."""

    def __init__(self, graph: Graph, tokens: ClapTokens, dim: int) -> None:
        self.graph = graph
        self.tokens = tokens
        self.dim = dim

    def encode(self, texts: Sequence[str], max_batch: int) -> np.ndarray:
        out = []
        for start in range(0, len(texts), max_batch):
            ids, mask = self.tokens.batch(list(texts[start : start + max_batch]))
            out.append(self.graph(input_ids=ids, attention_mask=mask))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


def audio_spec(settings: ModelsSettings, files: ModelFiles) -> Spec:
    folder = files.require("clap")
    front = FrontEnd.load(folder, ClapPolicy())
    batch = settings.clap.batch_windows.cpu
    threads = ort_threads(settings)

    def load_eager() -> Any:
        from timbre.embedding.clap_torch import CPU, ClapAudioTower

        configure_threads(settings.threads)
        return ClapAudioTower.load(folder, CPU)

    def export(tower: Any, target: Path) -> Path:
        from timbre.embedding.clap_torch import export_audio

        frames = front.window_samples // front.hop + 1
        return export_audio(tower, frames, front.mel_filters.shape[1], target)

    def probes(dims: dict[str, int], reload: bool) -> list[np.ndarray]:
        waves = probe_waveforms(front.sample_rate)
        mels = [front.log_mel(w) for wave in waves for w in front.windows(wave)]
        return mels[:1] if reload else mels

    return Spec(
        kind="clap_audio",
        name="CLAP audio tower",
        sources=[first_file(folder, CLAP_WEIGHT_FILES), folder / "config.json"],
        load_eager=load_eager,
        export=export,
        dims=lambda t: {"dim": int(t.dim)},
        load_ort=lambda path, dims: OrtClapAudioTower(
            Graph(path, threads, ("mels",)), int(dims["dim"])
        ),
        probes=probes,
        run=lambda tower, mels: tower.encode(mels, batch),
    )


def text_spec(settings: ModelsSettings, files: ModelFiles) -> Spec:
    folder = files.require("clap")
    batch = settings.clap.batch_texts.cpu
    threads = ort_threads(settings)

    def load_eager() -> Any:
        from timbre.embedding.clap_torch import CPU, ClapTextTower

        configure_threads(settings.threads)
        return ClapTextTower.load(folder, CPU)

    def export(tower: Any, target: Path) -> Path:
        from timbre.embedding.clap_torch import export_text

        return export_text(tower, target)

    def load_ort(path: Path, dims: dict[str, int]) -> OrtClapTextTower:
        graph = Graph(path, threads, ("input_ids", "attention_mask"))
        return OrtClapTextTower(graph, ClapTokens.load(folder), int(dims["dim"]))

    return Spec(
        kind="clap_text",
        name="CLAP text tower",
        sources=[
            first_file(folder, CLAP_WEIGHT_FILES),
            folder / "config.json",
            folder / "tokenizer.json",
        ],
        load_eager=load_eager,
        export=export,
        dims=lambda t: {"dim": int(t.dim)},
        load_ort=load_ort,
        probes=lambda dims, reload: [*PROBE_TEXTS] if reload else [*PROBE_TEXTS, LONG_PROBE_TEXT],
        run=lambda tower, texts: tower.encode(texts, batch),
    )
