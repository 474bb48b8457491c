"""Timbre: semantic search for audio sample libraries.

The shared library (audio, embedding, store, search, settings). It never imports `app` or
`ingest`; only the composition root (`timbre.cli`) wires all three together (docs/architecture.md).
"""

import os

# OpenBLAS threads spin after each call and took the cores from the next text query's torch
# threads (bench/results/); a short timeout lets them sleep at once. Set before numpy loads.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

__version__ = "0.1.0"
