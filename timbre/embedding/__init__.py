"""Embeddings of audio and text, in one of several model families.

``embedder`` is the entry point (describe, load audio, load text of ``models.family``);
``family`` the seam a family implements; ``files`` and ``hub`` where weights come from;
``runtime`` device and threads; ``onnx_backend`` and ``onnx_export`` the family-neutral ONNX
Runtime gate. Each family has ``<family>.py`` (torch-free: the family, its audio path, its
ONNX graphs), ``<family>_inputs.py`` (what both runtimes share) and ``<family>_torch.py``;
``random_bundle`` and ``random_clap`` write random-weight bundles of each. This package imports
nothing itself.
"""
