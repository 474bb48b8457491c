"""Export a loaded PyTorch module to ONNX: torch's dynamo exporter, then ONNX Runtime's
transformer fusions (at export time, so the agreement gate judges exactly what will run).

Graphs come from the modules loaded from the official checkpoints, with dynamic batch and
length axes, so nothing recompiles at run time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
"""The graph; its weights go beside it in ``model.onnx.data`` (memory-mapped by onnxruntime)."""
RAW_FILE = "raw.onnx"
"""The exporter's graph before the fusions; deleted once the fused graph is written."""
FUSIONS_FILE = "fusions.json"
"""Which fusions were applied, kept beside the graph (and copied into the manifest)."""
MAX_BATCH = 4096
"""Upper bound of the batch axis (segments or windows per call); far above any setting."""


def export_module(
    module: nn.Module, args: tuple[torch.Tensor, ...], shapes: dict[str, Any], target: Path
) -> Path:
    """Export ``module`` on example ``args`` with dynamic ``shapes`` into the folder
    ``target``, fuse it, and return the model file."""
    target.mkdir(parents=True, exist_ok=True)
    raw = target / RAW_FILE
    with _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(
            module.eval(),
            args,
            dynamo=True,
            dynamic_shapes=shapes,
            output_names=["vectors"],
            optimize=True,
            verbose=False,
        )
    assert program is not None  # the dynamo exporter always returns its program
    program.save(str(raw), external_data=True)
    del program  # its copy of the weights is on disk now
    path = target / MODEL_FILE
    with _quiet_exporter():  # the rewriter logs every pass and skipped fold at INFO
        fusions = fuse_graph(raw, path)
    (target / FUSIONS_FILE).write_text(json.dumps(fusions, indent=1) + "\n", encoding="utf-8")
    for leftover in target.glob(f"{RAW_FILE}*"):
        leftover.unlink()
    return path


def fuse_graph(source: Path, target: Path) -> dict[str, int]:
    """Write the fused graph of ``source`` to another file ``target`` (weights in
    ``<target>.data``; the source's are read lazily meanwhile) and return how many of each
    fusion applied."""
    import onnx_ir as ir
    from onnxscript.rewriter.ort_fusions import optimize_for_ort

    if source.resolve() == target.resolve():
        raise ValueError(f"fuse_graph writes a new file; {source} is its own source")
    model, counts = optimize_for_ort(ir.load(source))
    ir.save(model, target, external_data=f"{target.name}.data")
    applied = {name: int(n) for name, n in counts.items() if n}
    log.info("fused %s: %s", target, applied)
    return applied


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter logs every op library it does not find and warns about its internals;
    none of it concerns Timbre's graphs."""
    names = ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "onnx_ir")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
