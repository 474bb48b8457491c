"""Store test helpers: realistic random points, stores of every adapter, a brute-force oracle.

Also a tiny child-process entry point
(``python -m tests.support.store_factory <action> <data_dir>``) for the tests that need a real
second process: one that holds the embedded store, and one that is killed in the middle
of a snapshot export.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from timbre.embedding.info import ModelInfo
from timbre.musickey import normalize_key
from timbre.settings import load_settings
from timbre.store import Point, SearchFilter, VectorStore, build_payload, open_store
from timbre.store.schema import CollectionSchema

DIM = 48
"""Small test dimension: every code path sees the real shapes except the size."""

ADAPTERS = ("edge", "memory", "server")
"""edge = embedded Qdrant Edge; memory = qdrant-client in-memory standing in for a server;
server = a real Qdrant server at TIMBRE_QDRANT__URL (integration tier)."""

GENRES = ("techno", "house", "hip hop", "drum and bass", "ambient", "trap", "dubstep", "lofi")
INSTRUMENTS = ("kick", "snare", "clap", "hihat", "bass", "pad", "lead", "vocal", "fx", "perc")
PACKS = (
    "Analog Drums Vol 1",
    "Deep House Essentials",
    "Trap Nation",
    "Ambient Textures",
    "DnB Rollers",
)
KEYS = tuple(
    f"{n} {m}"
    for n in ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
    for m in ("major", "minor")
)
TAGS = (
    "dark",
    "punchy",
    "warm",
    "bright",
    "dusty",
    "wide",
    "dry",
    "wet",
    "analog",
    "808",
    "vinyl",
    "clean",
)
FORMATS = ("wav", "flac", "aiff", "mp3")
LABELS = ("kick", "snare", "hat", "pad", "bass", "vocal", "fx", "drum loop")
CHARACTER = ("punchy", "warm", "dark", "bright", "dusty", "wide")
CATEGORIES = ("Drums", "Bass", "Synths", "Vocals", "FX")
SUBFOLDERS = ("One Shots", "Loops", "Kicks", "Snares", "Hats", "Textures")


def model_info(dim: int = DIM, revision: str = "r1") -> ModelInfo:
    """Model identity of test data (no weights needed: the store only reads the identity)."""
    return ModelInfo(
        mert=f"timbre/random-tiny@{revision}",
        clamp3=f"timbre/random-tiny@{revision}/clamp3.pth",
        xlmr="timbre/random-tiny@r1",
        dim=dim,
        random_weights=True,
    )


def unit_vectors(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def random_payload(rng: np.random.Generator, info: ModelInfo) -> dict[str, Any]:
    """A payload like ingest writes for a file in a nested sample library."""
    loop = rng.random() < 0.35
    pack = str(rng.choice(PACKS))
    category = str(rng.choice(CATEGORIES))
    sub = str(rng.choice(SUBFOLDERS))
    stem = f"{rng.choice(INSTRUMENTS)}_{rng.integers(1, 999):03d}"
    fmt = str(rng.choice(FORMATS))
    paths = [f"Samples/{pack}/{category}/{sub}/{stem}.{fmt}"]
    if rng.random() < 0.1:  # the same content copied elsewhere
        paths.append(f"Samples/Favourites/{stem}.{fmt}")
    descriptive = {
        "pack": pack,
        "genre": str(rng.choice(GENRES)) if rng.random() < 0.85 else None,
        "bpm": round(float(rng.uniform(70, 175)), 1) if loop or rng.random() < 0.1 else None,
        "key": str(rng.choice(KEYS)) if rng.random() < 0.5 else None,
        "instrument": str(rng.choice(INSTRUMENTS)) if rng.random() < 0.9 else None,
        "kind": "loop" if loop else "one_shot",
        "duration_s": round(float(rng.uniform(2, 30) if loop else rng.uniform(0.05, 3)), 4),
        "sample_rate": int(rng.choice([44100, 48000, 96000])),
        "channels": int(rng.choice([1, 2])),
        "format": fmt,
        "tags": sorted({str(t) for t in rng.choice(TAGS, size=int(rng.integers(0, 4)))}),
    }
    sha = hashlib.sha256(rng.bytes(16)).hexdigest()
    descriptive.update(_audio_facts(rng, descriptive))
    payload = build_payload(descriptive, content_sha256=sha, paths=paths, model=info)
    # Libraries spell keywords inconsistently: the store must match them case-insensitively.
    for field in ("genre", "pack", "instrument"):
        if payload[field] and rng.random() < 0.25:
            payload[field] = (
                str(payload[field]).title() if rng.random() < 0.5 else payload[field].upper()
            )
    if payload["tags"] and rng.random() < 0.25:
        payload["tags"] = [t.capitalize() for t in payload["tags"]]
    if rng.random() < 0.7:  # zero-shot labels, as ingest's labeller writes them
        category = str(rng.choice(LABELS))
        tags = sorted({category, *(str(t) for t in rng.choice(CHARACTER, size=2))})
        payload.update(
            category=category,
            category_score=round(float(rng.uniform(0.2, 0.6)), 4),
            auto_tags=tags,
            auto_tag_scores={t: 0.3 for t in tags},
            labels_version="vocab-test@random",
        )
    return payload


def _audio_facts(rng: np.random.Generator, descriptive: dict[str, Any]) -> dict[str, Any]:
    """Sources, confidences, analysis version and peaks, as ingest writes them."""
    out: dict[str, Any] = {}
    for field in ("bpm", "key"):
        source = str(rng.choice(["name", "tags", "audio"])) if descriptive[field] else None
        out[f"{field}_source"] = source
        out[f"{field}_confidence"] = (
            round(float(rng.uniform(0.2, 1)), 3) if source == "audio" else None
        )
    out["analysis_version"] = "timbre-dsp-1+peaks1"
    out["peaks"] = base64.b64encode(rng.integers(0, 256, 200, dtype=np.uint8).tobytes()).decode()
    return out


@dataclass
class Dataset:
    """Points and their vectors/payloads as plain arrays for the oracle."""

    points: list[Point]
    vectors: np.ndarray
    payloads: list[dict[str, Any]]

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self.points]


def make_dataset(n: int, *, seed: int = 0, info: ModelInfo | None = None) -> Dataset:
    rng = np.random.default_rng(seed)
    info = info or model_info()
    vectors = unit_vectors(rng, n, info.dim)
    payloads = [random_payload(rng, info) for _ in range(n)]
    points = [Point.of(v, p) for v, p in zip(vectors, payloads, strict=True)]
    return Dataset(points, vectors, payloads)


# -- the oracle: independent of the store's translation (plain string prefixes, no `dirs`) --


def oracle_fold(field: str, value: Any) -> Any:
    """Case-insensitive (and, for keys, enharmonic) form, written independently of the store."""
    if not isinstance(value, str):
        return value
    if field == "key":
        return normalize_key(value) or value.lower()
    return " ".join(value.lower().split())


def oracle_matches(payload: dict[str, Any], f: SearchFilter) -> bool:
    keywords = ("genre", "instrument", "kind", "key", "pack", "tags", "category", "auto_tags")
    for field in (*keywords, "bpm_source", "key_source"):
        allowed = getattr(f, field)
        if allowed is None:
            continue
        value = payload.get(field)
        values = value if isinstance(value, list) else [value]
        if not {oracle_fold(field, v) for v in values} & {oracle_fold(field, a) for a in allowed}:
            return False
    for field, lo, hi in (
        ("bpm", f.bpm_min, f.bpm_max),
        ("duration_s", f.duration_min_s, f.duration_max_s),
    ):
        if lo is None and hi is None:
            continue
        value = payload.get(field)
        if value is None or (lo is not None and value < lo) or (hi is not None and value > hi):
            return False
    if f.path_prefix is not None:
        paths = payload.get("paths") or []
        if not any(
            p.startswith(prefix.rstrip("/") + "/") for p in paths for prefix in f.path_prefix
        ):
            return False
    return True


def oracle_search(
    data: Dataset, query: np.ndarray, top_k: int, f: SearchFilter | None = None, offset: int = 0
) -> list[tuple[str, float]]:
    """Exact top-k by inner product over the points matching ``f`` (numpy brute force)."""
    scores = data.vectors @ query
    keep = np.array([f is None or oracle_matches(p, f) for p in data.payloads])
    rows = np.flatnonzero(keep)
    best = rows[np.argsort(-scores[rows], kind="stable")][offset : offset + top_k]
    return [(data.ids[r], float(scores[r])) for r in best]


def random_filter(rng: np.random.Generator, data: Dataset) -> SearchFilter:
    """1-3 conditions drawn from values that exist, so results are neither always empty nor all."""
    while True:
        try:
            return _random_filter(rng, data)
        except ValidationError:  # two drawn duration bounds crossed: draw again
            continue


def _random_filter(rng: np.random.Generator, data: Dataset) -> SearchFilter:
    source = data.payloads[int(rng.integers(len(data.payloads)))]
    choices: list[dict[str, Any]] = [
        {"genre": [source["genre"] or "techno", str(rng.choice(GENRES))]},
        {"instrument": source["instrument"] or "kick"},
        {"kind": source["kind"]},
        {"key": [source["key"] or "C minor"]},
        {"pack": source["pack"]},
        {"tags": list(rng.choice(TAGS, size=2, replace=False))},
        {"bpm_min": float(rng.uniform(70, 140)), "bpm_max": float(rng.uniform(140, 180))},
        {"bpm_min": 120.0},
        {"duration_max_s": float(rng.uniform(0.2, 3))},
        {"duration_min_s": float(rng.uniform(1, 10)), "duration_max_s": 30.0},
        {"path_prefix": "/".join(source["path"].split("/")[: int(rng.integers(2, 5))])},
        {"path_prefix": ["Samples/Favourites", "Samples/Trap Nation/Drums"]},
        # case-insensitive keywords, enharmonic keys, zero-shot labels
        {"genre": str(source["genre"] or "techno").upper()},
        {"pack": str(source["pack"]).lower(), "instrument": str(rng.choice(INSTRUMENTS)).title()},
        {"key": [_respell(source["key"] or "Bb minor")]},
        {"tags": [str(t).upper() for t in rng.choice(TAGS, size=2, replace=False)]},
        {"category": [source["category"] or "kick", str(rng.choice(LABELS)).title()]},
        {"auto_tags": [str(rng.choice(CHARACTER)).upper()]},
        # how the facts were obtained
        {"bpm_source": [source["bpm_source"] or "audio"]},
        {"key_source": ["tags", "name"]},
    ]
    picked: dict[str, Any] = {}
    for i in rng.choice(len(choices), size=int(rng.integers(1, 4)), replace=False):
        picked.update(choices[int(i)])
    return SearchFilter.model_validate(picked)


_FLAT_OF_SHARP = {"C#": "Db", "D#": "Eb", "F#": "Gb", "G#": "Ab", "A#": "Bb"}


def _respell(key: str) -> str:
    """The enharmonic spelling of a key (``Eb minor`` -> ``D#m``, ``F#`` -> ``Gbm``...)."""
    canonical = normalize_key(key) or key
    root = canonical.rstrip("m")
    minor = canonical.endswith("m")
    return _FLAT_OF_SHARP.get(root, root) + (" minor" if minor else " major")


# -- stores -------------------------------------------------------------------------------


def server_url() -> str | None:
    return os.environ.get("TIMBRE_QDRANT__URL") or None


ADAPTER_PARAMS = [
    pytest.param("edge"),
    pytest.param("memory"),
    pytest.param(
        "server",
        marks=[
            pytest.mark.integration,
            pytest.mark.skipif(not server_url(), reason="TIMBRE_QDRANT__URL is not set"),
        ],
    ),
]
"""The store adapters a test runs on: embedded, in-memory qdrant-client, and a real server
when ``TIMBRE_QDRANT__URL`` names one."""


def open_test_store(
    adapter: str,
    data_dir: Path,
    info: ModelInfo | None = None,
    *,
    client: Any = None,
    reindex: bool = False,
    schema: CollectionSchema | None = None,
    **qdrant: Any,
) -> VectorStore:
    """A store of ``adapter`` with fast test settings (no retry back-off).

    ``client`` is reused for the in-memory and server adapters so that a test can reopen the
    same "server"; ``qdrant`` overrides settings of the ``qdrant`` section.
    """
    info = info or model_info()
    overrides = {"retry_backoff_s": 0.0, **qdrant}
    if adapter == "edge":
        settings = load_settings(data_dir=data_dir, qdrant={"url": None, **overrides})
        return open_store(settings, info, reindex=reindex, schema=schema)
    settings = load_settings(data_dir=data_dir, qdrant=overrides)
    return open_store(
        settings, info, client=client or new_client(adapter), reindex=reindex, schema=schema
    )


def new_client(adapter: str) -> Any:
    from qdrant_client import QdrantClient

    if adapter == "memory":
        return QdrantClient(":memory:")
    url = server_url()
    assert url, "server tests need TIMBRE_QDRANT__URL"
    return QdrantClient(url=url, api_key=os.environ.get("TIMBRE_QDRANT__API_KEY") or None)


def unique_collection() -> str:
    """A base collection name no other test run uses (real servers are shared)."""
    return f"timbre_test_{uuid.uuid4().hex[:10]}"


def drop_collections(client: Any, base: str) -> None:
    """Remove a test's alias and collections from a real server."""
    from qdrant_client import models as qm

    for alias in client.get_aliases().aliases:
        if alias.alias_name == base:
            client.update_collection_aliases(
                change_aliases_operations=[
                    qm.DeleteAliasOperation(delete_alias=qm.DeleteAlias(alias_name=base))
                ]
            )
    for c in client.get_collections().collections:
        if c.name.startswith(f"{base}-"):
            client.delete_collection(c.name)


def hit_ids(hits: Sequence[Any]) -> list[str]:
    return [h.id for h in hits]


# -- child processes ----------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def spawn_child(action: str, data_dir: Path) -> subprocess.Popen[str]:
    """Run :func:`_child` in a new Python process (a real second owner of the store)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.store_factory", action, str(data_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("TIMBRE_")},
    )


def wait_for_line(child: subprocess.Popen[str], prefix: str, timeout_s: float = 60) -> str:
    """Block until the child prints a line starting with ``prefix``."""
    assert child.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        if line.startswith(prefix):
            return line
        if not line and child.poll() is not None:
            break
    raise AssertionError(f"child never printed {prefix!r} (exit code {child.poll()})")


def _child(action: str, data_dir: Path) -> None:
    from timbre.store.snapshot import export_snapshot

    store = open_test_store("edge", data_dir)
    if action == "hold":
        print("ready", flush=True)
        time.sleep(600)  # until the parent kills us
    elif action == "export-and-hang":

        def hang_after_first_page(rows: int) -> None:
            print(f"exporting {rows}", flush=True)
            time.sleep(600)  # the parent kills us here, mid-export

        export_snapshot(
            store.live(),
            data_dir / "snapshots",
            source_mode=store.mode,
            keep=3,
            batch_size=100,
            progress=hang_after_first_page,
        )
    store.close()


if __name__ == "__main__":
    _child(sys.argv[1], Path(sys.argv[2]))


@contextmanager
def store_with_snapshot(
    adapter: str, data: Dataset, data_dir: Path, *, upsert_batch: int
) -> Iterator[tuple[VectorStore, Any]]:
    """A store of ``adapter`` holding ``data`` and the snapshot exported from it (a server's
    collections are dropped afterwards)."""
    from timbre.store.snapshot import export_snapshot, load_snapshot

    client = new_client(adapter) if adapter != "edge" else None
    base = unique_collection() if adapter == "server" else "timbre"
    store = open_test_store(
        adapter, data_dir, client=client, collection=base, upsert_batch=upsert_batch
    )
    try:
        assert store.live().upsert(data.points) == len(data.points)
        export_snapshot(store.live(), data_dir / "snapshots", source_mode=store.mode, keep=2)
        yield store, load_snapshot(data_dir / "snapshots", model_info(), mmap_min_bytes=0)
    finally:
        store.close()
        if adapter == "server":
            drop_collections(client, base)
