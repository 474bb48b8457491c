"""Timbre: semantic search for audio sample libraries.

The shared library: audio decoding (`timbre.audio`), the MERT -> CLaMP3 embedding pipeline
(`timbre.embedding`), the Qdrant store and FAISS snapshot (`timbre.store`), the search service
(`timbre.search`) and typed settings (`timbre.settings`). It never imports `app` or `ingest`;
only the command-line composition root (`timbre.cli`) wires all three together.
"""

import os

# OpenBLAS (numpy's BLAS, which runs the snapshot scan) keeps its worker threads spinning for
# ~2^28 cycles after each call. Those spinning threads took the cores from the torch threads
# of the next text query: a query embedded right after a 100k-vector scan took a median
# 160 ms instead of 90 ms on a 2-core machine. With a 2^4-cycle timeout the threads sleep at
# once (90 ms) and the scan is as fast. Set before numpy is first imported; an explicit
# setting in the environment wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

__version__ = "0.1.0"
