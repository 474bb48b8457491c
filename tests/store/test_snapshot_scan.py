"""The quantised scan answers what the exact flat scan answers, on uniform and clustered data.

The default tier runs it at 20k vectors with the quantised path forced on (the threshold set
to 0); the slow tier at 100k and a million, where the issue's bar is set: top-k ids equal to
the exact flat search on >= 99.9 % of queries, scores within 1e-5 after the re-rank.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.support.snapshot_factory import VectorSpec, export_arrays, model_info, queries
from timbre.store import SearchFilter
from timbre.store.snapshot import ScanOptions, Snapshot, load_snapshot
from timbre.store.snapshot.quantiser import Sq8, code_radius
from timbre.store.snapshot.scan import QuantisedScan, Selection

DIM = 768
SCORE_TOL = 1e-5


def _load(snapshots: Path, dim: int, *, quantised: bool, threads: int = 2) -> Snapshot:
    scan = ScanOptions(quantised_min_vectors=0, threads=threads) if quantised else None
    return load_snapshot(snapshots, model_info(dim), mmap_min_bytes=0, scan=scan)


def _agreement(
    snapshot: Snapshot,
    reference: Snapshot,
    qs: np.ndarray,
    k: int,
    selection: Selection | None = None,
) -> float:
    """Share of queries whose top-k rows equal the exact flat scan's; asserts the scores agree.

    The reference is the flat scan itself, not another brute force: a GEMM over all queries
    rounds differently (~1e-7) and reorders near-ties among near-identical vectors.
    """
    same = 0
    for q in qs:
        want_s, want_r = reference.scan.top(q, k, selection)
        got_s, got_r = snapshot.scan.top(q, k, selection)
        np.testing.assert_allclose(got_s, want_s, atol=SCORE_TOL, rtol=0)
        same += bool(np.array_equal(got_r, want_r))
    return same / len(qs)


@pytest.fixture(scope="module", params=["uniform", "clustered"])
def small(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[VectorSpec, Path]:
    spec = VectorSpec(20_000, DIM, request.param, seed=3)
    snapshots = tmp_path_factory.mktemp(f"scan-{request.param}") / "snapshots"
    export_arrays(spec, snapshots)
    return spec, snapshots


def test_the_bound_holds_for_every_stored_vector() -> None:
    spec = VectorSpec(5000, DIM, "clustered", seed=5)
    vectors = spec.array()
    coarse = Sq8.from_range(vectors.min(0), vectors.max(0))
    codes = coarse.encode(vectors)
    params = coarse.params.copy()
    params[2] = np.abs(coarse.decode(codes) - vectors).max(0)
    decoding, integer = Sq8(params), Sq8(params, code_radius(codes))
    approx = decoding.decode(codes)
    assert 0 < params[2].max() <= (params[1] / 255).max()  # at most one level
    for q in queries(spec, 30):
        true = vectors.astype(np.float64) @ q
        for quantiser in (decoding, integer):
            prepared = quantiser.prepare(q)
            assert prepared.integer == (quantiser is integer)
            # Every stored vector's approximate score (as the kernel computes it, all rows
            # in one heap) is within the bound of its true score ...
            scores, rows = quantiser.top(codes, prepared, len(codes), None)
            assert sorted(rows) == list(range(len(codes)))
            assert np.abs(true[rows] - scores).max() <= prepared.bound
        # ... the float kernel scores like the decoded vectors (to float32 rounding), and the
        # integer one is within its rounding term of them.
        scores, rows = decoding.top(codes, decoding.prepare(q), 50, None)
        np.testing.assert_allclose(scores, approx[rows] @ q, atol=2e-5)
        prepared = integer.prepare(q)
        scores, rows = integer.top(codes, prepared, 50, None)
        gap = np.abs(scores - approx[rows].astype(np.float64) @ q).max()
        assert gap <= prepared.bound - decoding.bound(q) + 2e-5


def test_the_integer_kernel_is_exact_at_the_extremes() -> None:
    """FAISS's QT_8bit_direct_signed scanner, as the first pass uses it: codes at 0 and 255
    against weights at -127 and 127 must sum exactly (no int16 saturation, no float rounding)."""
    rng = np.random.default_rng(2)
    dim = 768
    codes = rng.choice(np.array([0, 1, 254, 255], np.uint8), size=(2000, dim))
    codes[0], codes[1] = 255, 0
    params = np.stack([np.zeros(dim), np.full(dim, 255.0), np.zeros(dim)]).astype(np.float32)
    quantiser = Sq8(params, code_radius(codes))
    for weights in (np.full(dim, 127.0), np.full(dim, -127.0), rng.choice([-127.0, 127.0], dim)):
        # q_i * step_i = weights_i with step 1: the prepared weights are exactly these.
        prepared = quantiser.prepare(weights.astype(np.float32))
        assert prepared.integer and np.array_equal(prepared.weights, weights)
        scores, rows = quantiser.top(codes, prepared, len(codes), None)
        kernel = (scores - prepared.offset) / prepared.scale
        exact = (codes[rows].astype(np.int64) - 128) @ weights.astype(np.int64)
        np.testing.assert_array_equal(np.round(kernel), exact)
        np.testing.assert_allclose(kernel, exact, rtol=0, atol=1e-6 * np.abs(exact).max())
        # the range scan finds every row at or above a score, no matter how it rounds
        cut = float(np.median(scores))
        found = set(quantiser.above(codes, prepared, cut, None).tolist())
        assert {int(r) for r, v in zip(rows, scores, strict=True) if v >= cut} <= found


def test_quantised_top_k_equals_the_exact_scan(
    small: tuple[VectorSpec, Path],
) -> None:
    spec, snapshots = small
    quantised = _load(snapshots, DIM, quantised=True)
    flat = _load(snapshots, DIM, quantised=False)
    assert isinstance(quantised.scan, QuantisedScan)
    qs = queries(spec, 90)
    assert _agreement(quantised, flat, qs, 10) == 1.0
    assert _agreement(quantised, flat, qs[:15], 100) == 1.0
    if spec.kind == "clustered":
        # Tight clusters of ~1,000 near-identical vectors defeat a 512-candidate first pass;
        # the second pass must have been needed (and taken) for some of these queries.
        assert quantised.scan.second_passes > 0
    else:
        # Spread-out vectors: the best 128 candidates alone prove most results (the rest of
        # the 512 are never read), and the answers above are still the flat scan's.
        assert quantised.scan.early_proofs > len(qs) // 2


def test_filtered_quantised_scan_equals_the_exact_scan(
    small: tuple[VectorSpec, Path],
) -> None:
    spec, snapshots = small
    quantised = _load(snapshots, DIM, quantised=True, threads=3)
    flat = _load(snapshots, DIM, quantised=False)
    qs = queries(spec, 30)
    for kind in ("loop", "one_shot"):
        selection = quantised.select(SearchFilter(kind=kind))
        assert selection is not None
        assert selection.count == sum(1 for r in range(spec.n) if (r % 3 == 0) == (kind == "loop"))
        assert _agreement(quantised, flat, qs, 10, selection) == 1.0


def test_paging_and_hits_agree_between_flat_and_quantised(
    small: tuple[VectorSpec, Path],
) -> None:
    spec, snapshots = small
    flat = _load(snapshots, DIM, quantised=False)
    quantised = _load(snapshots, DIM, quantised=True, threads=1)
    assert flat.scan.kind == "flat" and quantised.scan.kind == "sq8"
    loops = flat.select(SearchFilter(kind="loop"))
    for q in queries(spec, 4, seed=4):
        for offset in (0, 7, 600):
            assert quantised.search(q, 10, offset) == flat.search(q, 10, offset)
            assert quantised.search(q, 5, offset, loops) == flat.search(q, 5, offset, loops)


@pytest.mark.slow
@pytest.mark.timeout(7200)  # a million: export ~5 min, 2 x 1,100 scans of 3 GB or 0.8 GB
@pytest.mark.parametrize("n", [100_000, 1_000_000])
@pytest.mark.parametrize("kind", ["uniform", "clustered"])
def test_quantised_scan_at_scale(n: int, kind: str, tmp_path: Path) -> None:
    spec = VectorSpec(n, DIM, kind, seed=11)
    export_arrays(spec, tmp_path / "snapshots")
    quantised = _load(tmp_path / "snapshots", DIM, quantised=True, threads=0)
    flat = _load(tmp_path / "snapshots", DIM, quantised=False)
    qs = queries(spec, 1000, seed=12)
    assert _agreement(quantised, flat, qs, 10) >= 0.999
    loops = quantised.select(SearchFilter(kind="loop"))
    assert loops is not None
    assert _agreement(quantised, flat, qs[::10], 10, loops) >= 0.99  # 100: one may differ


def test_range_bounds_inclusive_and_exclusive() -> None:
    from types import SimpleNamespace

    from timbre.store.snapshot.columns import _range_slice

    values = np.array([1.0, 2.0, 2.0, 3.0, 4.0])

    def rows(**bounds: float) -> list[float]:
        full = {"gte": None, "lte": None, "gt": None, "lt": None, **bounds}
        lo, hi = _range_slice(values, SimpleNamespace(**full))  # type: ignore[arg-type]
        return values[lo:hi].tolist()

    assert rows(gte=2.0, lte=3.0) == [2.0, 2.0, 3.0]
    assert rows(gt=2.0, lte=3.0) == [3.0]
    assert rows(gte=2.0, lt=3.0) == [2.0, 2.0]
    assert rows(gt=1.0, lt=4.0) == [2.0, 2.0, 3.0]
    assert rows(gt=3.0, lt=3.0) == []
    assert rows() == values.tolist()


def test_rows_read_without_mapping_equal_the_mapped_rows(tmp_path: Path) -> None:
    from timbre.errors import SnapshotError
    from timbre.store.snapshot.arrays import RowReader

    path = tmp_path / "v.npy"
    np.save(path, np.random.default_rng(0).standard_normal((1000, 16)).astype(np.float32))
    mapped = np.load(path, mmap_mode="r")
    reader = RowReader(path, mapped)
    rows = np.array([0, 1, 2, 7, 500, 501, 999])  # runs and single rows, both ends
    np.testing.assert_array_equal(reader.read(rows), mapped[rows])
    assert reader.read(np.array([], dtype=np.int64)).shape == (0, 16)
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size - 8)  # the last row loses two values
    with pytest.raises(SnapshotError, match="truncated"):
        reader.read(np.array([998, 999]))


def test_the_code_radius_is_recorded_and_measured_when_missing(
    small: tuple[VectorSpec, Path],
) -> None:
    """The manifest records the codes' radius (the integer pass's bound needs it); a snapshot
    exported before it was recorded has it measured at load, to the same value."""
    from timbre.store.snapshot.layout import MANIFEST_FILE, current_snapshot_name

    spec, snapshots = small
    directory = snapshots / str(current_snapshot_name(snapshots))
    codes = np.load(directory / "sq8_codes.npy")
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    assert manifest["code_radius"] == pytest.approx(code_radius(codes), rel=1e-6)
    recorded = _load(snapshots, DIM, quantised=True)
    assert isinstance(recorded.scan, QuantisedScan)
    assert recorded.scan.quantiser.radius == manifest["code_radius"]

    older = snapshots.parent / "older" / "snapshots"
    shutil.copytree(snapshots, older)
    del manifest["code_radius"]
    (older / directory.name / MANIFEST_FILE).write_text(json.dumps(manifest))
    measured = _load(older, DIM, quantised=True)
    assert isinstance(measured.scan, QuantisedScan)
    assert measured.scan.quantiser.radius == pytest.approx(code_radius(codes))
    flat = _load(older, DIM, quantised=False)
    assert _agreement(measured, flat, queries(spec, 20), 10) == 1.0
