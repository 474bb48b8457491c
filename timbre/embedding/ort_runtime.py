"""MERT and the CLaMP3 towers in ONNX Runtime (CPU): the exported graphs behind the same
interfaces as the PyTorch classes (:class:`~timbre.embedding.mert.MertEncoder`,
:class:`~timbre.embedding.towers.AudioTower`, :class:`~timbre.embedding.towers.TextTower`).

No torch here: a process that finds its exports cached runs on onnxruntime, numpy and the
``tokenizers`` library alone (it starts in about a second and holds half the memory). Inputs are
batched by the rules of :mod:`timbre.embedding.segments`, exactly as the eager classes do, and
every graph has dynamic batch and length axes, so no input shape ever recompiles anything.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from timbre.embedding.segments import batches_by_length, encode_segmented, pad_rows
from timbre.embedding.text_input import TEXT_SEGMENT_TOKENS, TextTokens
from timbre.errors import ModelFilesError

log = logging.getLogger(__name__)

PROVIDERS = ["CPUExecutionProvider"]


def session_options(threads: int) -> ort.SessionOptions:
    """Options that hold under the service's concurrency.

    ``allow_spinning=0``: idle intra-op threads sleep instead of spinning for work. Spinning
    threads win a few percent on a quiet machine and lose badly beside any other busy thread
    (the text path's p99 went past a second under contention, the OpenBLAS lesson); with it off
    the p99 held at ~60-100 ms and the quiet case cost nothing measurable. One inter-op
    thread: the graphs are sequential chains, and the service serialises model work itself.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: its warnings about unused initialisers are noise
    return options


class Graph:
    """One exported model file in an ONNX Runtime session (input and output names checked)."""

    def __init__(self, path: Path, threads: int, inputs: tuple[str, ...]) -> None:
        try:
            self.session = ort.InferenceSession(str(path), session_options(threads), PROVIDERS)
        except Exception as exc:  # onnxruntime raises its own non-exported exception types
            raise ModelFilesError(f"onnxruntime cannot load {path}: {exc}") from exc
        names = tuple(i.name for i in self.session.get_inputs())
        if names != inputs:
            raise ModelFilesError(f"{path} takes inputs {names}, expected {inputs}")
        self.path = path
        self._output = self.session.get_outputs()[0].name

    def __call__(self, **feeds: np.ndarray) -> np.ndarray:
        out: Any = self.session.run([self._output], feeds)[0]
        return np.asarray(out, dtype=np.float32)


class OrtMertEncoder:
    """MERT window vectors from the exported graph (mean over time, then layers, inside it).

    ``streams`` passes run at once (onnxruntime releases the GIL), each on the session's
    intra-op threads: on a CPU, two windows on one thread each finish sooner than one after
    the other on two threads, most of all short ones whose small matrices split poorly
    across threads (``models.mert_streams`` in config/default.yaml). Each window is computed
    alone either way, so the vectors are bitwise the same.
    """

    INPUTS = ("windows",)

    def __init__(
        self, graph: Graph, *, sample_rate: int, hidden_size: int, num_layers: int, streams: int = 1
    ) -> None:
        self.graph = graph
        self.sample_rate = sample_rate
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.streams = streams

    @classmethod
    def load(
        cls, path: Path, dims: dict[str, int], threads: int, *, streams: int = 1
    ) -> OrtMertEncoder:
        return cls(
            Graph(path, threads, cls.INPUTS),
            sample_rate=int(dims["sample_rate"]),
            hidden_size=int(dims["hidden_size"]),
            num_layers=int(dims["num_layers"]),
            streams=streams,
        )

    def window_vectors(self, windows: Sequence[np.ndarray], max_batch: int) -> np.ndarray:
        """One vector per window, as :meth:`MertEncoder.window_vectors`."""
        out = np.empty((len(windows), self.hidden_size), dtype=np.float32)

        def run(chunk: list[int]) -> None:
            batch = np.stack([np.asarray(windows[i], np.float32) for i in chunk])
            out[chunk] = self.graph(windows=batch)

        chunks = list(batches_by_length(windows, max_batch))
        if self.streams > 1 and len(chunks) > 1:
            with ThreadPoolExecutor(min(self.streams, len(chunks))) as pool:
                list(pool.map(run, chunks))  # re-raises a pass's error here
        else:
            for chunk in chunks:
                run(chunk)
        return out


class OrtAudioTower:
    """CLaMP3 audio encoder from the exported graph (masked mean pool and projection inside)."""

    INPUTS = ("inputs_embeds", "attention_mask")

    def __init__(self, graph: Graph, *, input_dim: int, segment_rows: int, dim: int) -> None:
        self.graph = graph
        self.input_dim = input_dim
        self.segment_rows = segment_rows
        self.dim = dim

    @classmethod
    def load(cls, path: Path, dims: dict[str, int], threads: int) -> OrtAudioTower:
        return cls(
            Graph(path, threads, cls.INPUTS),
            input_dim=int(dims["input_dim"]),
            segment_rows=int(dims["segment_rows"]),
            dim=int(dims["dim"]),
        )

    def encode(self, features: Sequence[np.ndarray], max_batch: int) -> np.ndarray:
        """Global vectors for tracks, as :meth:`AudioTower.encode` (zero vectors at both ends)."""
        zero = np.zeros((1, self.input_dim), np.float32)
        items = [np.concatenate([zero, np.asarray(f, np.float32), zero]) for f in features]
        return encode_segmented(items, self.segment_rows, self._run, max_batch)

    def _run(self, segments: list[np.ndarray]) -> np.ndarray:
        rows, mask = pad_rows(segments, 0.0, np.float32)
        return self.graph(inputs_embeds=rows, attention_mask=mask)


class OrtTextTower:
    """CLaMP3 text encoder from the exported graph, with the reference's tokenisation."""

    INPUTS = ("input_ids", "attention_mask")

    def __init__(self, graph: Graph, tokens: TextTokens, *, dim: int) -> None:
        self.graph = graph
        self.tokens = tokens
        self.dim = dim

    @classmethod
    def load(cls, path: Path, dims: dict[str, int], xlmr_dir: Path, threads: int) -> OrtTextTower:
        # onnxruntime builds the session without the GIL: parse the tokenizer (~0.5 s for
        # XLM-R's 250k-piece vocabulary) meanwhile, on the other core.
        with ThreadPoolExecutor(1) as pool:
            tokens = pool.submit(TextTokens.load, xlmr_dir, int(dims["pad_id"]))
            graph = Graph(path, threads, cls.INPUTS)
            return cls(graph, tokens.result(), dim=int(dims["dim"]))

    @property
    def tokenizer(self) -> Any:
        return self.tokens.tokenizer

    def token_ids(self, text: str) -> list[int]:
        """Token ids of a text prepared as the reference does (:meth:`TextTokens.token_ids`)."""
        return self.tokens.token_ids(text)

    def encode(self, texts: Sequence[str], max_batch: int) -> np.ndarray:
        items = [np.asarray(self.token_ids(t), dtype=np.int64) for t in texts]
        return encode_segmented(items, TEXT_SEGMENT_TOKENS, self._run, max_batch)

    def _run(self, segments: list[np.ndarray]) -> np.ndarray:
        ids, mask = pad_rows(segments, self.tokens.pad_id, np.int64)
        return self.graph(input_ids=ids, attention_mask=mask)


def runtime_version() -> str:
    return str(ort.__version__)
