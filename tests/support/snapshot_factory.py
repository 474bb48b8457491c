"""Large snapshots for the scan tests: uniform and clustered vectors, generated chunk by chunk.

Loading a million points into Qdrant Edge takes ~8 minutes here, so the scan tests export
from :class:`ArraySource`, a read-only collection that yields seeded rows on the fly (the
export only describes and scrolls its source). The export, the files, the loading and the
scans are the real ones; the store adapters have their own congruence tests.

Clustered data is what sample libraries look like (many near-identical one-shots, sounds of
one pack close together), and where a quantised ranking differs from the exact one: a mixture
of clusters of very different sizes and tightness, a few of them large and tight.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from timbre.embedding.info import ModelInfo
from timbre.store.records import CollectionInfo, Record, WriteMarker
from timbre.store.snapshot import export_snapshot

CHUNK_ROWS = 32_768


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class VectorSpec:
    """Seeded vectors: ``uniform`` on the sphere, or ``clustered`` (see the module doc)."""

    n: int
    dim: int
    kind: str
    seed: int = 0
    clusters: int = 500

    def chunks(self) -> Iterator[np.ndarray]:
        """The rows in order, CHUNK_ROWS at a time (identical on every call)."""
        rng = np.random.default_rng(self.seed)
        centres, weights, spread = self._mixture(rng)
        for start in range(0, self.n, CHUNK_ROWS):
            count = min(CHUNK_ROWS, self.n - start)
            noise = rng.standard_normal((count, self.dim), dtype=np.float32)
            if self.kind == "uniform":
                yield unit(noise)
                continue
            which = rng.choice(len(centres), size=count, p=weights)
            scale = spread[which][:, None] / np.sqrt(self.dim)
            yield unit(centres[which] + scale * noise)

    def _mixture(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.kind == "uniform":
            return np.empty((0, self.dim), np.float32), np.empty(0), np.empty(0)
        assert self.kind == "clustered", self.kind
        centres = unit(rng.standard_normal((self.clusters, self.dim), dtype=np.float32))
        weights = rng.pareto(1.0, self.clusters) + 1.0  # heavy-tailed cluster sizes
        weights[:3] = weights.sum() / 20  # three large clusters of ~5 % each, tight below
        spread = rng.uniform(0.05, 1.0, self.clusters).astype(np.float32)
        spread[:3] = 0.05  # cosine ~0.999 to the centre: near-identical one-shots
        return centres, weights / weights.sum(), spread

    def array(self) -> np.ndarray:
        return np.concatenate(list(self.chunks()))

    def rows(self, wanted: np.ndarray) -> np.ndarray:
        """Selected rows (for queries near stored vectors) without keeping all of them."""
        out = np.empty((len(wanted), self.dim), np.float32)
        for i, chunk in enumerate(self.chunks()):
            lo = i * CHUNK_ROWS
            inside = (wanted >= lo) & (wanted < lo + len(chunk))
            out[inside] = chunk[wanted[inside] - lo]
        return out


def queries(spec: VectorSpec, count: int, seed: int = 1) -> np.ndarray:
    """A third random directions, a third stored vectors, a third stored vectors nudged."""
    rng = np.random.default_rng(seed)
    third = count // 3
    stored = spec.rows(rng.integers(0, spec.n, count - third))
    nudged = unit(stored[third:] + 0.3 * unit(rng.standard_normal(stored[third:].shape)))
    directions = unit(rng.standard_normal((third, spec.dim), dtype=np.float32))
    return np.concatenate([directions, stored[:third], nudged])


def model_info(dim: int) -> ModelInfo:
    return ModelInfo(
        mert="timbre/random-tiny@r1",
        clamp3="timbre/random-tiny@r1/clamp3.pth",
        xlmr="timbre/random-tiny@r1",
        dim=dim,
        random_weights=True,
    )


class ArraySource:
    """A read-only collection of :class:`VectorSpec` rows with small payloads (module doc)."""

    def __init__(self, spec: VectorSpec) -> None:
        self.spec = spec
        self.info = model_info(spec.dim)
        self.name = f"arrays-{spec.kind}-{spec.n}"

    def describe(self) -> CollectionInfo:
        return CollectionInfo(
            name=self.name,
            dim=self.spec.dim,
            distance="Cosine",
            model=self.info.as_dict(),
            audio_key=self.info.audio_key(),
            schema_version=1,
            created_at="2026-01-01T00:00:00+00:00",
            published_at=None,
            last_write=WriteMarker(1, None),
        )

    def scroll(
        self,
        *,
        filter: object = None,
        fields: Sequence[str] | None = None,
        with_vectors: bool = False,
        batch_size: int | None = None,
    ) -> Iterator[Record]:
        row = 0
        for chunk in self.spec.chunks():
            for vector in chunk:
                payload = {"path": f"lib/{row}.wav", "kind": ("one_shot", "loop")[row % 3 == 0]}
                yield Record(f"00000000-0000-5000-8000-{row:012x}", payload, vector)
                row += 1


def export_arrays(spec: VectorSpec, snapshots: Path) -> None:
    """Export ``spec`` into ``snapshots`` (one ``kind`` column, to exercise filtered scans)."""
    export_snapshot(
        ArraySource(spec),  # type: ignore[arg-type]
        snapshots,
        source_mode="embedded",
        keep=1,
        indexes={"kind": "keyword"},
    )
