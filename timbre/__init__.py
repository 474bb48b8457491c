"""Timbre: semantic search for audio sample libraries.

The shared library: audio decoding (`timbre.audio`), the MERT -> CLaMP3 embedding pipeline
(`timbre.embedding`), the Qdrant store and FAISS snapshot (`timbre.store`), the search service
(`timbre.search`) and typed settings (`timbre.settings`). It never imports `app` or `ingest`;
only the command-line composition root (`timbre.cli`) wires all three together.
"""

__version__ = "0.1.0"
