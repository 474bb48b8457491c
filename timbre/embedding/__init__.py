"""Embeddings of audio and text, in one of several model families.

Modules: ``family`` (the seam a family implements) and ``families`` (``models.family`` -> it),
``embedder`` (the entry points: describe, load audio, load text), ``files`` (where weights come
from: bundle or hub), ``runtime`` (device, threads, precision gates), ``onnx_backend`` (the
family-neutral ONNX Runtime export gate). The clamp3 family: ``clamp3`` and its ``clamp3_*``,
``mert``, ``towers``, ``random_bundle`` modules; the clap family: ``clap`` and ``clap_*``.
Import the submodule you need: this package imports nothing itself, so reading settings or
files never pays for torch.
"""
