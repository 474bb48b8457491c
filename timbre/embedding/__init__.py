"""MERT -> CLaMP3 embeddings, following shared/MODEL_SPEC.md to the letter.

Modules: ``files`` (where weights come from: bundle or hub), ``weights`` (reading checkpoint
files), ``mert`` (window features), ``towers`` (CLaMP3 audio and text towers), ``embedder``
(the audio and text paths end to end), ``runtime`` (device, threads, int8), ``random_bundle``
(random-weight bundles in the official formats). Import the submodule you need: this package
imports nothing itself, so reading settings or files never pays for torch.
"""
