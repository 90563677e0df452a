"""Metrics against closed forms: matching, shifts, temporal scores, fields, ROIs.

Tolerances: similarity values that are ratios of pixel counts are compared exactly
(``==`` on the float ratio computed the same way); continuous values use ``rel=1e-12``
unless stated.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import minisim.metrics as metrics
from minisim import (
    ActivityScore,
    Match,
    activity_similarity,
    field_pearson,
    footprint_mask,
    footprint_roi_trace,
    global_shift_from_trajectories,
    hungarian_match,
    shift_rmse,
    trace_pearson,
)
from minisim.metrics import METRICS, energy_mask

H = W = 64


def square(top: int, left: int, size: int = 10, value: float = 1.0) -> np.ndarray:
    a = np.zeros((H, W))
    a[top : top + size, left : left + size] = value
    return a


def gaussian(cy: float, cx: float, sigma: float = 2.5, peak: float = 1.0) -> np.ndarray:
    y, x = np.mgrid[:H, :W]
    return peak * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma**2))


@pytest.fixture
def cells() -> np.ndarray:
    """Four separated graded blobs (no ties, distinct shapes)."""
    return np.stack(
        [
            gaussian(15, 15, 2.0),
            gaussian(15, 45, 3.0, 2.0),
            gaussian(45, 20, 2.5, 0.5),
            gaussian(44, 46, 3.5, 1.5),
        ]
    )


def shifted(stack: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Zero-filled translation of a stack (positive = down/right)."""
    out = np.zeros_like(stack)
    src = stack[:, max(0, -dy) : H - max(0, dy), max(0, -dx) : W - max(0, dx)]
    out[:, max(0, dy) : max(0, dy) + src.shape[1], max(0, dx) : max(0, dx) + src.shape[2]] = src
    return out


# --------------------------------------------------------------------------- matching


@pytest.mark.parametrize("metric", METRICS)
def test_identical_stacks_match_perfectly(cells, metric):
    m = hungarian_match(cells, cells, metric=metric)
    assert m.pairing == ((0, 0), (1, 1), (2, 2), (3, 3))
    np.testing.assert_allclose(np.diag(m.similarity_matrix), 1.0, rtol=1e-12)
    assert m.recall() == m.precision() == 1.0
    assert m.mean_similarity == pytest.approx(1.0, rel=1e-12)
    assert m.mean_iou == m.mean_similarity
    assert m.iou_matrix is m.similarity_matrix
    assert (m.n_est, m.n_true, m.metric, m.shift) == (4, 4, metric, (0, 0))


@pytest.mark.parametrize("metric", METRICS)
def test_disjoint_stacks_have_no_pairs(metric):
    est = np.stack([square(0, 0), square(0, 20)])
    true = np.stack([square(40, 0), square(40, 20), square(40, 40)])
    m = hungarian_match(est, true, metric=metric)
    assert np.all(m.similarity_matrix == 0) and m.similarity_matrix.shape == (2, 3)
    assert m.pairing == ()  # zero-similarity assignments are dropped
    assert (m.recall(), m.precision(), m.mean_similarity) == (0.0, 0.0, 0.0)


def test_shuffled_stack_is_unscrambled(cells):
    order = np.array([2, 0, 3, 1])
    m = hungarian_match(cells[order], cells)
    assert m.pairing == tuple((i, int(order[i])) for i in range(4))
    assert m.recall() == 1.0


def test_unequal_counts(cells):
    m = hungarian_match(cells[[3, 1]], cells)
    assert m.pairing == ((0, 3), (1, 1))
    assert m.recall() == 0.5 and m.precision() == 1.0
    m = hungarian_match(cells, cells[:1])
    assert m.recall() == 1.0 and m.precision() == 0.25


def test_partial_overlap_iou_and_thresholds():
    # 10×10 squares; frac = 1 keeps every pixel: IoU = inter / union exactly.
    true = np.stack([square(5, 5), square(30, 30)])
    est = np.stack([square(5, 10), square(32, 30)])  # 50/150 and 80/120
    m = hungarian_match(est, true, energy_frac=1.0)
    assert m.similarity_matrix[0, 0] == 50 / 150 and m.similarity_matrix[1, 1] == 80 / 120
    assert m.pairing == ((0, 0), (1, 1))
    assert m.matched_pairs(0.5) == ((1, 1),)
    assert m.matched_pairs(0.3) == ((0, 0), (1, 1))
    assert m.recall(0.5) == 0.5 and m.precision(0.7) == 0.0
    assert m.mean_similarity == pytest.approx((1 / 3 + 2 / 3) / 2, rel=1e-12)


def test_energy_mask_keeps_brightest_share():
    a = np.array([[4.0, 3.0], [2.0, 1.0]])  # total 10; 0.5 → 4+3 reaches 7 ≥ 5 at k = 2
    np.testing.assert_array_equal(energy_mask(a, 0.5), [[True, True], [False, False]])
    np.testing.assert_array_equal(energy_mask(a, 0.4), [[True, False], [False, False]])
    np.testing.assert_array_equal(energy_mask(a, 0.9), [[True, True], [True, False]])  # 9 ≥ 9
    np.testing.assert_array_equal(energy_mask(a, 0.91), [[True, True], [True, True]])
    assert not energy_mask(np.zeros((3, 3)), 0.9).any()
    np.testing.assert_array_equal(energy_mask(-a, 1.0), np.zeros((2, 2), bool))


def test_energy_frac_one_handles_high_dynamic_range():
    a = np.full((8, 8), 1e-30)
    a[4, 4] = 1e30  # the cumulative sum never "reaches" the total through the tail
    assert energy_mask(a, 1.0).all()
    b = a.copy()
    b[0, 0] = 0.0  # differs only in one tiny pixel
    m = hungarian_match(a[None], b[None], energy_frac=1.0)
    assert m.similarity_matrix[0, 0] == 63 / 64
    # a tiny share keeps only the bright pixel: the tail no longer matters
    assert hungarian_match(a[None], b[None], energy_frac=0.5).similarity_matrix[0, 0] == 1.0


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5])
def test_bad_energy_frac_raises(cells, bad):
    with pytest.raises(ValueError, match="energy_frac"):
        hungarian_match(cells, cells, energy_frac=bad)


def test_bad_metric_and_shift_raise(cells):
    with pytest.raises(ValueError, match="metric"):
        hungarian_match(cells, cells, metric="dice")
    with pytest.raises(ValueError, match="shift"):
        hungarian_match(cells, cells, shift="centroid")
    with pytest.raises(ValueError, match="field of view"):
        hungarian_match(cells, cells[:, :32], shift=None)


def test_weighted_metrics_follow_pixel_weights():
    est = np.zeros((1, H, W))
    true = np.zeros((1, H, W))
    est[0, 0, :2] = [1.0, 1.0]
    true[0, 0, :2] = [1.0, 3.0]
    # same support: IoU (all pixels) 1; Ruzicka of [.5,.5] vs [.25,.75] = .75/1.25
    assert hungarian_match(est, true, energy_frac=1.0).similarity_matrix[0, 0] == 1.0
    wj = hungarian_match(est, true, metric="weighted_jaccard").similarity_matrix[0, 0]
    assert wj == pytest.approx(0.6, rel=1e-12)
    cos = hungarian_match(est, true, metric="cosine").similarity_matrix[0, 0]
    assert cos == pytest.approx(4 / np.sqrt(20), rel=1e-12)
    # scaling a footprint changes neither weighted metric
    for metric in ("weighted_jaccard", "cosine"):
        m = hungarian_match(7.0 * true, true, metric=metric)
        assert m.similarity_matrix[0, 0] == pytest.approx(1.0, rel=1e-12)


def brute_force_similarity(est: np.ndarray, true: np.ndarray, metric: str, frac: float):
    """The similarity matrix straight from the definitions, pair by pair, dense."""
    est, true = np.clip(est, 0, None), np.clip(true, 0, None)
    sim = np.zeros((len(est), len(true)))
    for i, a in enumerate(est):
        for j, b in enumerate(true):
            if metric == "iou":
                ma, mb = energy_mask(a, frac), energy_mask(b, frac)
                union = (ma | mb).sum()
                sim[i, j] = (ma & mb).sum() / union if union else 0.0
            elif metric == "cosine":
                norm = np.linalg.norm(a) * np.linalg.norm(b)
                sim[i, j] = (a * b).sum() / norm if norm else 0.0
            else:
                pa = a / a.sum() if a.sum() else a
                pb = b / b.sum() if b.sum() else b
                top = np.maximum(pa, pb).sum()
                sim[i, j] = np.minimum(pa, pb).sum() / top if top else 0.0
    return sim


@pytest.mark.parametrize("metric", METRICS)
def test_similarity_matches_the_definition(metric):
    rng = np.random.default_rng(9)

    def blobs(n):
        out = []
        for _ in range(n):
            a = gaussian(*rng.uniform(5, 59, 2), rng.uniform(1.5, 5), rng.uniform(0.1, 3))
            out.append(np.where(a > 0.02 * a.max(), a, 0.0) * (rng.random((H, W)) > 0.2))
        return np.stack(out + [np.zeros((H, W))])  # and an empty footprint

    est, true = blobs(9), blobs(7) - 0.01
    m = hungarian_match(est, true, metric=metric, energy_frac=0.8)
    np.testing.assert_allclose(
        m.similarity_matrix, brute_force_similarity(est, true, metric, 0.8), rtol=1e-12, atol=1e-15
    )
    assert (m.similarity_matrix > 0).sum() > 5  # the test compares real overlaps


def test_negative_values_are_clipped(cells):
    noisy = cells - 0.5 * (cells == 0)  # negative background
    m = hungarian_match(noisy, cells, metric="cosine")
    np.testing.assert_allclose(np.diag(m.similarity_matrix), 1.0, rtol=1e-12)


def test_xarray_and_dask_inputs(cells):
    ref = hungarian_match(cells, cells[::-1], metric="weighted_jaccard")
    as_xr = xr.DataArray(cells, dims=("cell", "y", "x"))
    lazy = as_xr.chunk({"cell": 1, "y": 32})  # several blocks of units, split frames
    for est in (as_xr, lazy, da.from_array(cells, chunks=(3, H, W))):
        m = hungarian_match(est, lazy[::-1], metric="weighted_jaccard")
        assert m.pairing == ref.pairing
        np.testing.assert_array_equal(m.similarity_matrix, ref.similarity_matrix)


# --------------------------------------------------------------------------- shifts


@pytest.mark.parametrize("metric", METRICS)
def test_auto_shift_recovers_translation(cells, metric):
    est = shifted(cells, 3, 2)
    plain = hungarian_match(est, cells, metric=metric)
    m = hungarian_match(est, cells, metric=metric, shift="auto")
    assert m.shift == (-3, -2)
    # exactly 1 but for Gaussian tails lost at the field edge by the zero-filled shifts
    np.testing.assert_allclose(np.diag(m.similarity_matrix), 1.0, rtol=1e-4)
    assert m.mean_similarity > plain.mean_similarity + 0.2


def test_auto_shift_high_dynamic_range():
    true = np.stack(
        [gaussian(16, 16, 2.0, 1e3), gaussian(20, 44, 3.0, 1.0), gaussian(44, 30, 2.5, 1e-3)]
    )
    m = hungarian_match(shifted(true, 6, 5), true, shift="auto", metric="cosine")
    assert m.shift == (-6, -5)
    np.testing.assert_allclose(np.diag(m.similarity_matrix), 1.0, rtol=1e-9)


def test_auto_shift_robust_to_false_positives(cells):
    junk = np.stack([square(2, 54, 6), square(54, 2, 5, 0.3)])
    est = np.concatenate([shifted(cells, -4, 3), junk])
    m = hungarian_match(est, cells, shift="auto")
    assert m.shift == (4, -3)
    assert m.recall() == 1.0 and m.precision() == 4 / 6


def test_explicit_shift_is_rounded_unbounded_and_unguarded(cells):
    m = hungarian_match(shifted(cells, 3, 2), cells, shift=(-2.6, -2.4))
    assert m.shift == (-3, -2) and m.recall() == 1.0
    far = hungarian_match(cells, cells, shift=(50, 50))  # beyond the auto search; worse
    assert far.shift == (50, 50)
    assert far.pairing == () and np.all(far.similarity_matrix == 0)


def test_auto_shift_without_mass_is_zero(cells):
    m = hungarian_match(np.zeros((2, H, W)), cells, shift="auto")
    assert m.shift == (0, 0) and m.pairing == ()
    m = hungarian_match(cells, np.zeros((1, H, W)), shift="auto")
    assert m.shift == (0, 0)


def test_auto_shift_adopted_only_if_it_helps(cells, monkeypatch):
    # A candidate that makes things worse is refused...
    monkeypatch.setattr(metrics, "_phase_correlation_shift", lambda *a: (5, 5))
    m = hungarian_match(cells, cells, shift="auto")
    assert m.shift == (0, 0)
    np.testing.assert_allclose(np.diag(m.similarity_matrix), 1.0, rtol=1e-12)
    # ... a candidate that ties is refused too (strict improvement)...
    assert hungarian_match(np.zeros((1, H, W)), cells, shift="auto").shift == (0, 0)
    # ... and one that helps is adopted.
    m = hungarian_match(shifted(cells, -5, -5), cells, shift="auto")
    assert m.shift == (5, 5) and m.recall() == 1.0


def test_shift_from_trajectories():
    rng = np.random.default_rng(1)
    true = rng.normal(0, 3, (50, 2))
    correction = -(true - np.array([2.0, 1.0]))  # registered to a template displaced by (2, 1)
    assert global_shift_from_trajectories(correction, true) == (-2, -1)
    assert global_shift_from_trajectories(true - [2.0, 1.0], true, correction=False) == (-2, -1)
    assert global_shift_from_trajectories(-(true - [2.4, -1.6]), true) == (-2, 2)
    assert global_shift_from_trajectories(-(true - [2.5, -0.5]), true) == (-2, 0)  # half-even
    assert global_shift_from_trajectories(np.zeros((0, 2)), np.zeros((0, 2))) == (0, 0)


def test_trajectory_shift_recovers_footprints(cells):
    true = np.random.default_rng(2).normal(0, 2, (30, 2))
    correction = -(true - np.array([4.0, -2.0]))
    est = shifted(cells, 4, -2)
    offset = global_shift_from_trajectories(correction, true)
    m = hungarian_match(est, cells, shift=offset)
    assert m.shift == (-4, 2) and m.recall() == 1.0


def test_shift_rmse_known_values():
    true = np.zeros((2, 2))
    est = np.array([[2.5, 2.5], [-2.5, 2.5]])
    assert shift_rmse(est, true) == 2.5
    # align removes the per-axis mean residual (0, 2.5): residual ±2.5 on y, 0 on x
    assert shift_rmse(est, true, align=True) == pytest.approx(np.sqrt(12.5 / 4), rel=1e-12)
    traj = np.random.default_rng(3).normal(0, 2, (40, 2))
    assert shift_rmse(-traj, traj, correction=True) == 0.0
    assert shift_rmse(-traj, traj) == pytest.approx(2 * np.sqrt(np.mean(traj**2)), rel=1e-12)
    assert shift_rmse(-(traj + [3.0, -1.0]), traj, correction=True, align=True) < 1e-12
    assert np.isnan(shift_rmse(np.zeros((0, 2)), np.zeros((0, 2))))
    with pytest.raises(ValueError, match="frames"):
        shift_rmse(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"\(frame, 2\)"):
        shift_rmse(np.zeros(3), np.zeros(3))


# --------------------------------------------------------------------------- temporal


def test_trace_pearson_and_constants():
    rng = np.random.default_rng(4)
    true = rng.random((3, 100))
    est = np.stack([2 * true[0] + 5, -true[1], np.full(100, 0.3)])
    r = trace_pearson(est, true, [(0, 0), (1, 1), (2, 2)])
    assert r[0] == pytest.approx(1.0, rel=1e-12) and r[1] == pytest.approx(-1.0, rel=1e-12)
    assert np.isnan(r[2])  # 0.3 is not exactly representable; still constant
    r = trace_pearson(true, true, [(0, 1)])
    assert r[0] == pytest.approx(np.corrcoef(true[0], true[1])[0, 1], rel=1e-12)
    assert trace_pearson(true, true, []).shape == (0,)
    as_xr = xr.DataArray(true, dims=("cell", "frame")).chunk({"cell": 1})
    m = Match(np.eye(3), ((0, 0), (1, 1)))
    np.testing.assert_allclose(trace_pearson(as_xr, true, m), [1.0, 1.0], rtol=1e-12)


def test_activity_scale_invariance_and_cases():
    rng = np.random.default_rng(5)
    s = (rng.random(200) < 0.1) * rng.integers(1, 4, 200).astype(float)
    true = np.stack([3.0 * s, s, s, np.zeros(200), s])
    est = np.stack([s, (s > 0).astype(float), 4.0 - s, s, np.full(200, 2.0)])
    score = activity_similarity(est, true, [(i, i) for i in range(5)])
    assert isinstance(score, ActivityScore) and len(score) == 5
    # 0: the truth is the estimate ×3 → exact fit, α = 3
    assert score.correlation[0] == pytest.approx(1.0, rel=1e-12)
    assert score.scale[0] == pytest.approx(3.0, rel=1e-12)
    assert score.variance_explained[0] == pytest.approx(1.0, rel=1e-12)
    # 1: a binarized estimate loses the amplitudes: r < 1 exactly as Pearson says
    r_bin = np.corrcoef(s > 0, s)[0, 1]
    assert score.correlation[1] == pytest.approx(r_bin, rel=1e-12) and r_bin < 0.99
    assert score.variance_explained[1] == pytest.approx(r_bin**2, rel=1e-9)
    # 2: anti-correlated → α = 0, nothing explained
    assert score.correlation[2] == pytest.approx(-1.0, rel=1e-12)
    assert score.scale[2] == 0.0 and score.variance_explained[2] == 0.0
    # 3: constant truth → α = 0, PVE undefined; 4: constant estimate → (0, 0)
    assert np.isnan(score.correlation[3]) and score.scale[3] == 0.0
    assert np.isnan(score.variance_explained[3])
    assert np.isnan(score.correlation[4])
    assert score.scale[4] == 0.0 and score.variance_explained[4] == 0.0


def test_temporal_inputs_are_checked():
    with pytest.raises(ValueError, match="frames"):
        trace_pearson(np.zeros((1, 5)), np.zeros((1, 6)), [(0, 0)])
    with pytest.raises(IndexError):
        trace_pearson(np.zeros((1, 5)), np.zeros((1, 5)), [(0, 3)])


def test_field_pearson_affine_invariant():
    f = np.random.default_rng(6).random((16, 16))
    assert field_pearson(3.0 * f + 7.0, f) == pytest.approx(1.0, rel=1e-12)
    assert field_pearson(-f, xr.DataArray(f).chunk(8)) == pytest.approx(-1.0, rel=1e-12)
    assert np.isnan(field_pearson(np.ones((16, 16)), f))
    with pytest.raises(ValueError, match="shape"):
        field_pearson(f, f[:8])


# --------------------------------------------------------------------------- ROIs


def test_footprint_mask():
    a = np.array([[0.0, 0.1, 0.18], [0.19, 0.5, 1.0]])
    np.testing.assert_array_equal(footprint_mask(a), [[False, False, False], [True, True, True]])
    np.testing.assert_array_equal(footprint_mask(a, rel=0.5), [[False] * 3, [False, False, True]])
    assert not footprint_mask(np.zeros((3, 3))).any()
    assert not footprint_mask(-np.ones((3, 3))).any()
    stack = footprint_mask(np.stack([a, 10 * a, np.zeros_like(a)]))
    np.testing.assert_array_equal(stack[0], stack[1])
    assert not stack[2].any()
    with pytest.raises(ValueError, match="rel"):
        footprint_mask(a, rel=1.0)


def test_footprint_roi_trace(cells):
    movie = np.random.default_rng(7).random((30, H, W))
    mask = footprint_mask(cells[1])
    trace = footprint_roi_trace(movie, cells[1])
    assert trace.shape == (30,)
    np.testing.assert_allclose(trace, movie[:, mask].mean(axis=1), rtol=1e-12)
    stack = np.concatenate([cells, np.zeros((1, H, W))])
    traces = footprint_roi_trace(movie, stack)
    assert traces.shape == (5, 30)
    np.testing.assert_array_equal(traces[1], trace)
    np.testing.assert_array_equal(traces[4], np.zeros(30))  # empty mask → zeros
    with pytest.raises(ValueError, match="field of view"):
        footprint_roi_trace(movie[:, :32], cells)


def test_footprint_roi_trace_streams_lazily(cells, no_compute):
    # no_compute fails if any dask task runs: building the traces must not touch the movie
    movie = da.from_array(np.ones((50, H, W), np.float32), chunks=(7, 32, 16))
    lazy = footprint_roi_trace(movie, cells)
    assert isinstance(lazy, da.Array)
    assert lazy.shape == (4, 50) and lazy.chunks == ((4,), movie.chunks[0])  # a task per chunk
    labelled = xr.DataArray(movie, dims=("frame", "y", "x"), coords={"frame": np.arange(50)})
    out = footprint_roi_trace(labelled, cells[0])
    assert isinstance(out.data, da.Array) and out.dims == ("frame",)
    np.testing.assert_array_equal(out.frame, np.arange(50))


@pytest.mark.parametrize("chunks", [(1, H, W), (7, H, W), (50, 32, 16)])
def test_footprint_roi_trace_lazy_equals_eager(cells, chunks):
    # float values (integer counts would sum exactly in any order and prove nothing)
    movie = np.random.default_rng(8).random((50, H, W))
    eager = footprint_roi_trace(movie, cells)
    lazy = footprint_roi_trace(da.from_array(movie, chunks=chunks), cells).compute()
    np.testing.assert_array_equal(lazy, eager)  # bit-identical: per-frame running sums


# --------------------------------------------------------------------------- empty inputs


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("shift", [None, "auto", (2, 1)])
def test_empty_stacks(cells, metric, shift):
    empty = np.zeros((0, H, W))
    for est, true in [(empty, cells), (cells, empty), (empty, empty)]:
        m = hungarian_match(est, true, metric=metric, shift=shift)
        assert m.similarity_matrix.shape == (len(est), len(true))
        assert m.pairing == () and m.matched_pairs() == ()
        assert (m.recall(), m.precision(), m.mean_similarity) == (0.0, 0.0, 0.0)
        assert m.shift == ((0, 0) if shift in (None, "auto") else (2, 1))


def test_empty_temporal_and_roi():
    assert trace_pearson(np.zeros((0, 10)), np.zeros((0, 10)), []).shape == (0,)
    score = activity_similarity(np.zeros((0, 10)), np.zeros((0, 10)), [])
    assert score.correlation.shape == score.scale.shape == score.variance_explained.shape == (0,)
    movie = np.ones((5, H, W))
    assert footprint_roi_trace(movie, np.zeros((0, H, W))).shape == (0, 5)
    lazy = footprint_roi_trace(da.ones((5, H, W), chunks=(2, H, W)), np.zeros((0, H, W)))
    assert lazy.compute().shape == (0, 5)
    assert footprint_mask(np.zeros((0, H, W))).shape == (0, H, W)
