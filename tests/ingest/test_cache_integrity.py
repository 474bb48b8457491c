"""Caches whose content becomes vectors or labels are checked on read, never trusted blindly.

A power cut can leave a cache file zero-filled (its size committed, its data not) or short.
Point ids are content hashes, so a wrong vector stored once is never corrected by later runs:
the damaged entry must be a miss, computed again, and the result must equal a clean run's.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ingest.cache import FeatureCache
from ingest.synthetic import make_library
from tests.support.ingest_helpers import ingest, job_settings, read_store
from timbre.labels.labeller import load_vocabulary
from timbre.labels.vectors import CACHE_DIR, label_vectors

_NPY_MAGIC = b"\x93NUMPY"


def _zero_fill(path: Path) -> None:
    path.write_bytes(bytes(path.stat().st_size))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _zero_array_data(path: Path) -> None:
    """Zero the array's values, leaving every header intact: what a file system that wrote the
    first block but not the rest leaves, and what a cache without a checksum reads as valid."""
    raw = bytearray(path.read_bytes())
    npy = raw.index(_NPY_MAGIC)
    header_len = int.from_bytes(raw[npy + 8 : npy + 10], "little")
    data = npy + 10 + header_len
    raw[data:] = bytes(len(raw) - data)
    path.write_bytes(bytes(raw))


def test_damaged_feature_cache_entries_are_recomputed_to_the_clean_vectors(
    tmp_path: Path, tiny_bundle: Path, audio_embedder: Any, caplog: pytest.LogCaptureFixture
) -> None:
    library = make_library(
        tmp_path / "lib", one_shots_per_pack=1, loops_per_pack=0, loop_bars=(1,), broken=False
    )
    clean_settings = job_settings(tiny_bundle, tmp_path / "clean")
    ingest(clean_settings, audio_embedder, [library.root])
    clean = read_store(clean_settings, audio_embedder)

    # A second data dir whose feature cache holds the same entries, three ways damaged.
    damaged_dir = tmp_path / "damaged"
    shutil.copytree(tmp_path / "clean" / "cache" / "mert", damaged_dir / "cache" / "mert")
    entries = sorted((damaged_dir / "cache" / "mert").rglob("*.features"))
    assert len(entries) == len(clean) >= 3
    for i, entry in enumerate(entries):
        (_zero_fill, _truncate, _zero_array_data)[i % 3](entry)

    settings = job_settings(tiny_bundle, damaged_dir)
    caplog.set_level("WARNING", logger="timbre.ingest")
    result = ingest(settings, audio_embedder, [library.root])
    assert result.summary["counts"]["features_cached"] == 0  # not one damaged entry used
    again = read_store(settings, audio_embedder)
    assert again.keys() == clean.keys()
    for pid, (payload, vector) in clean.items():
        assert np.array_equal(again[pid][1], vector), payload["path"]
    warned = [r.getMessage() for r in caplog.records if "feature cache" in r.getMessage()]
    assert any("zero-filled" in m for m in warned) and any("checksum" in m for m in warned)

    # The entries were rewritten whole: a third run reads every one of them.
    cache = FeatureCache(damaged_dir / "cache" / "mert", "x", "y")
    cache.folder = entries[0].parent.parent
    assert all(cache.get(e.stem) is not None for e in entries)


def test_damaged_label_vector_cache_is_embedded_again(tmp_path: Path, text_embedder: Any) -> None:
    vocabulary = load_vocabulary()
    info = text_embedder.info
    cache_dir = tmp_path / CACHE_DIR
    calls = []

    def text() -> Any:
        calls.append(1)
        return text_embedder

    clean = label_vectors(vocabulary, info, cache_dir, text, free_text=False)
    (cached,) = cache_dir.glob("*.npz")
    assert np.array_equal(label_vectors(vocabulary, info, cache_dir, text, free_text=False), clean)
    assert len(calls) == 1  # read back from the cache

    def flip_a_byte(path: Path) -> None:
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 3] ^= 0xFF
        path.write_bytes(bytes(raw))

    def zero_vectors(path: Path) -> None:
        # A well-formed file whose vectors are zeros: every CRC holds, the content is wrong.
        with np.load(path) as data:
            names = data["names"]
        np.savez(path, vectors=np.zeros_like(clean), names=names)

    for damage in (_zero_fill, _truncate, flip_a_byte, zero_vectors):
        damage(cached)
        before = len(calls)
        assert np.array_equal(
            label_vectors(vocabulary, info, cache_dir, text, free_text=False), clean
        ), damage.__name__
        assert len(calls) == before + 1, damage.__name__  # embedded again, not read
