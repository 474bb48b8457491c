"""ONNX Runtime's transformer fusions, applied once to each exported graph before it is gated.

The dynamo exporter writes attention as its decomposed ops (MatMul, Softmax, a NaN guard,
Where) and every LayerNorm and GELU after a bias Add separately: ~550 nodes per model.
onnxscript's ``ort_fusions`` rewrite those patterns into ONNX Runtime's CPU kernels
(``Attention`` or ``MultiHeadAttention``, ``SkipLayerNormalization``, ``BiasGelu``), ~150
nodes: fewer kernel launches and fewer intermediate tensors per call. It runs at export time,
so the cached graph is the fused one and the agreement gate (:mod:`timbre.embedding.
onnx_backend`) judges exactly what will run. Measured on the full-size bundle beside the
unfused graphs (bench/bench_embedding.py, ``ort-unfused``).

onnxruntime's own ``onnxruntime.transformers.optimizer`` (``model_type="bert"``) targets
TorchScript exports; the onnxscript rules are written for the dynamo exporter's graphs, which
is what Timbre exports. Their version is part of the export cache key (``onnxscript`` in
:func:`timbre.embedding.export_cache.tool_versions`). No torch here.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def fuse_graph(source: Path, target: Path) -> dict[str, int]:
    """Write the fused graph of ``source`` to ``target`` (weights in ``<target>.data``).

    ``source`` and ``target`` must differ: the source's weights are read lazily from its
    external data file while the target's are written.

    Returns:
        How many of each fusion were applied (only those that applied).
    """
    import onnx_ir as ir
    from onnxscript.rewriter.ort_fusions import optimize_for_ort

    if source.resolve() == target.resolve():
        raise ValueError(f"fuse_graph writes a new file; {source} is its own source")
    model = ir.load(source)
    model, counts = optimize_for_ort(model)
    ir.save(model, target, external_data=f"{target.name}.data")
    applied = {name: int(n) for name, n in counts.items() if n}
    log.info("fused %s: %s", target, applied)
    return applied
