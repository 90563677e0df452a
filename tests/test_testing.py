"""The test fixture, Estimate/Report/score, out-of-core scoring and the benchmark surface."""

from __future__ import annotations

import math
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from scipy import ndimage

import minisim
from minisim import BrainMotion, NeuronPopulation, Neuropil, Sensor, SpecWarning, sweep
from minisim.metrics import footprint_roi_trace
from minisim.testing import Estimate, Report, benchmark, make_recording, make_spec, score


@pytest.fixture(scope="module")
def rec():
    """The default fixture, computed once (6 cells, 128², 40 frames)."""
    return make_recording().compute()


def perfect(gt, *, C=True, S=True, shifts=None) -> Estimate:
    """An estimate equal to the truth of the detectable cells."""
    d = gt.detectable_subset()
    return Estimate(
        A=d.A_observed.values,
        C=d.C.values if C else None,
        S=d.S.values if S else None,
        shifts=shifts,
    )


def roll(stack: np.ndarray, dy: int, dx: int) -> np.ndarray:
    return np.roll(stack, (dy, dx), axis=(1, 2))  # cells sit far from the edges


# --------------------------------------------------------------------------- make_recording


def test_default_fixture(rec):
    gt = rec.ground_truth
    assert rec.observed.shape == (40, 128, 128) and rec.observed.dtype == np.uint8
    assert gt.n_units == 6
    spec = rec.spec
    assert spec.seed == 0 and spec.acquisition.pixel_size_um == 1.0
    assert [s.kind for s in spec.steps] == [
        "place_neurons",
        "cell_activity",
        "optics",
        "composite",
        "sensor",
    ]
    assert spec.step("cell_activity").p_quiescent_to_active == 0.05
    assert spec.step("sensor").photons_per_unit == 40.0
    # a jittered grid over the central 70%: 3 columns × 2 rows, ≤ 4.48 µm from the nodes
    centers = gt.centers_um.values
    np.testing.assert_array_equal(centers[:, 0], 50.0)
    nodes_y = np.repeat([-44.8, 44.8], 3)
    nodes_x = np.tile([-44.8, 0.0, 44.8], 2)
    jitter = 0.15 * 89.6 / 3
    assert np.all(np.abs(centers[:, 1] - nodes_y) <= jitter + 1e-9)
    assert np.all(np.abs(centers[:, 2] - nodes_x) <= jitter + 1e-9)
    assert np.abs(centers[:, 1:] - np.c_[nodes_y, nodes_x]).max() > 0.5  # jittered at all


def test_fixture_is_lazy(no_compute):
    rec = make_recording(n_cells=4, duration_s=1.0)
    assert isinstance(rec.observed.data, da.Array)


@pytest.mark.parametrize("n", [1, 5, 7])
def test_exact_cell_count_and_shape(n):
    rec = make_recording(n_cells=n, n_px=96, duration_s=1.0)
    assert rec.ground_truth.n_units == n
    assert rec.observed.shape == (20, 96, 96)


def test_seed_determinism():
    a = make_recording(n_cells=3, n_px=64, duration_s=1.0, seed=3)
    b = make_recording(n_cells=3, n_px=64, duration_s=1.0, seed=3, chunks={"frame": 3})
    c = make_recording(n_cells=3, n_px=64, duration_s=1.0, seed=4)
    np.testing.assert_array_equal(a.observed.values, b.observed.values)
    np.testing.assert_array_equal(a.ground_truth.C.values, b.ground_truth.C.values)
    assert not np.array_equal(a.observed.values, c.observed.values)
    assert not np.array_equal(a.ground_truth.centers_um.values, c.ground_truth.centers_um.values)


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_n_cells_must_be_positive(bad):
    with pytest.raises(ValueError, match="n_cells"):
        make_recording(n_cells=bad)


def test_motion_snapshots_and_overrides():
    with pytest.warns(SpecWarning, match="Motion extent"):  # 10 µm on a 128 µm field
        rec = make_recording(motion=True)
    assert rec.ground_truth.shifts.shape == (40, 2)
    calm = make_recording(motion=BrainMotion(motion_amplitude_um=2.0), duration_s=1.0)
    assert calm.spec.step("brain_motion").motion_amplitude_um == 2.0
    snap = make_recording(duration_s=0.5, save_intermediates=True)
    assert "cells_only" in snap.stages
    np.testing.assert_array_equal(snap.stage("composite"), snap.stage("cells_only"))
    pop = NeuronPopulation(positions_um=[(30.0, 0.0, 0.0), (30.0, 20.0, 20.0)], soma_radius_um=4)
    custom = make_recording(
        n_cells=9,
        population=pop,
        sensor=Sensor(photons_per_unit=500.0),
        extra_steps=[Neuropil()],
        duration_s=0.5,
    )
    assert custom.ground_truth.n_units == 2
    np.testing.assert_array_equal(custom.ground_truth.centers_um.values, [[30, 0, 0], [30, 20, 20]])
    assert custom.spec.step("sensor").photons_per_unit == 500.0
    assert [s.kind for s in custom.spec.steps][-2:] == ["neuropil", "sensor"]


def test_focal_plane_auto_and_pinned():
    auto = make_recording(n_cells=4, depth_um=80.0, duration_s=0.5)
    assert auto.ground_truth.focal_depth_um == pytest.approx(80.0, abs=1e-9)
    with pytest.warns(SpecWarning, match="outside the cells' depth range"):
        pinned = make_recording(n_cells=4, depth_um=80.0, duration_s=0.5, focal_depth_um=0.0)
    assert pinned.ground_truth.focal_depth_um == 0.0


# --------------------------------------------------------------------------- Estimate


def test_estimate_spellings_and_errors():
    A, C, S = np.zeros((1, 4, 4)), np.zeros((1, 5)), np.ones((1, 5))
    a = Estimate(footprints=A, traces=C, activity=S)
    b = Estimate(A=A, C=C, S=S, shifts=np.zeros((5, 2)))
    assert a.A is A and a.footprints is A and a.traces is C and a.C is C
    assert a.S is S and a.activity is S and a.shifts is None
    assert b.footprints is A and b.shifts.shape == (5, 2)
    with pytest.raises(TypeError, match="footprints"):
        Estimate(C=C)
    with pytest.raises(TypeError, match="not both"):
        Estimate(A=A, footprints=A)
    with pytest.raises(TypeError, match="not both"):
        Estimate(A=A, C=C, traces=C)
    with pytest.raises(TypeError):
        Estimate(A)  # keywords only
    with pytest.raises(AttributeError):
        a.A = None  # frozen
    assert "1×4×4" in repr(a)


# --------------------------------------------------------------------------- score


def test_perfect_estimate(rec):
    gt = rec.ground_truth
    n_det = int(gt.detectable.values.sum())
    assert 0 < n_det <= 6
    report = score(perfect(gt), gt)
    assert isinstance(report, Report)
    assert report.recall == report.precision == report.f1 == 1.0
    assert report.n_true == report.n_est == report.n_matched == n_det
    assert report.mean_overlap > 0.99
    assert report.trace_corr > 0.99 and report.activity_corr > 0.99
    assert report.activity_scale == pytest.approx(1.0, rel=1e-6)
    assert report.activity_variance_explained > 0.99
    assert report.shift_rmse is None and report.footprint_shift == (0, 0)
    assert score(perfect(gt), rec) == report  # a Recording works too


def test_shifted_perfect_estimate_is_recovered_by_auto_shift(rec):
    gt = rec.ground_truth
    est = perfect(gt)
    moved = Estimate(A=roll(est.A, 5, -3), C=est.C)
    assert score(moved, gt, footprint_shift=None).recall < 0.5  # the shift hurts...
    report = score(moved, gt)  # ... and "auto" (phase correlation) undoes it
    assert report.footprint_shift == (-5, 3)
    assert report.recall == report.precision == 1.0 and report.trace_corr > 0.99
    assert score(moved, gt, footprint_shift=(-5, 3)).recall == 1.0


def test_empty_estimate(rec):
    report = score(Estimate(A=np.zeros((0, 128, 128))), rec.ground_truth)
    assert (report.n_est, report.n_matched) == (0, 0)
    assert (report.recall, report.precision, report.f1) == (0.0, 0.0, 0.0)
    for name in ("mean_overlap", "trace_corr", "activity_corr", "activity_scale"):
        assert math.isnan(getattr(report, name)), name
    assert report.shift_rmse is None
    assert report.n_true == report.n_detectable > 0


def test_footprints_only(rec):
    report = score(perfect(rec.ground_truth, C=False, S=False), rec.ground_truth)
    assert report.recall == 1.0
    assert math.isnan(report.trace_corr) and math.isnan(report.activity_corr)


def test_denominator_bookkeeping(rec):
    gt = rec.ground_truth
    detectable = gt.detectable.values
    n_det = int(detectable.sum())
    assert n_det < 6, "the default fixture should have an undetectable cell to count"
    everything = Estimate(A=gt.A_observed.values, C=gt.C.values)
    only = score(everything, gt)  # the undetectable cell's footprint is a false positive
    assert (only.n_requested, only.n_detectable, only.n_true, only.n_est) == (6, n_det, n_det, 6)
    assert only.recall == 1.0 and only.precision == n_det / 6
    all_cells = score(everything, gt, restrict_to_detectable=False)
    assert (all_cells.n_true, all_cells.recall, all_cells.precision) == (6, 1.0, 1.0)
    assert all_cells.n_detectable == n_det
    # f1 of 3 found + 1 junk: recall 3/n_det, precision 3/4
    A = gt.detectable_subset().A_observed.values
    junk = np.zeros((1, 128, 128))
    junk[0, :6, :6] = 1.0
    partial = score(Estimate(A=np.concatenate([A[:3], junk])), gt)
    r, p = 3 / n_det, 3 / 4
    assert (partial.recall, partial.precision) == (r, p)
    assert partial.f1 == pytest.approx(2 * p * r / (p + r), rel=1e-12)


def test_match_threshold_and_metric(rec):
    gt = rec.ground_truth
    est = perfect(gt)
    eroded = Estimate(A=ndimage.grey_erosion(est.A, size=(1, 5, 5)))
    strict = score(eroded, gt, match_threshold=0.999)
    assert strict.recall == 0.0
    cos = score(est, gt, match_metric="cosine")
    assert cos.match_metric == "cosine" and cos.recall == 1.0 and cos.mean_overlap > 0.999


def test_motion_rmse_zero_for_perfect_correction():
    rec = make_recording(
        n_cells=4, duration_s=1.0, motion=BrainMotion(motion_amplitude_um=3.0)
    ).compute()
    gt = rec.ground_truth
    true = gt.shifts.values
    assert np.abs(true).max() > 1.0
    report = score(perfect(gt, shifts=-true), gt)
    assert report.shift_rmse == 0.0 and report.recall == 1.0
    lazy_gt = rec.ground_truth  # shifts given as an xarray object work alike
    assert score(perfect(lazy_gt, shifts=-gt.shifts), lazy_gt).shift_rmse == 0.0
    assert score(perfect(gt, shifts=np.zeros_like(true)), gt).shift_rmse > 0.5


def test_trajectory_derived_footprint_shift():
    rec = make_recording(
        n_cells=4, duration_s=1.0, motion=BrainMotion(motion_amplitude_um=3.0)
    ).compute()
    gt = rec.ground_truth
    true = gt.shifts.values
    # registered to a template displaced by (6, 4): footprints sit +6, +4 off the truth
    est = perfect(gt, shifts=-(true - [6.0, 4.0]))
    moved = Estimate(A=roll(est.A, 6, 4), C=est.C, shifts=est.shifts)
    report = score(moved, gt)
    assert report.footprint_shift == (-6, -4) and report.recall == 1.0
    assert report.shift_rmse == pytest.approx(0.0, abs=1e-9)  # the offset is aligned away
    assert score(moved, gt, footprint_shift=None).recall == 0.0


def test_summary(rec):
    gt = rec.ground_truth
    n_det = int(gt.detectable.values.sum())
    text = score(perfect(gt), gt).summary()
    assert "recall 1.000  precision 1.000  f1 1.000" in text
    assert f"{n_det} detectable of 6 in the field (recall denominator = {n_det})" in text
    assert "traces: median r = 1.000" in text and "activity: r = 1.000" in text
    assert "footprint shift" not in text and "motion" not in text
    est = perfect(gt)
    moved = score(Estimate(A=roll(est.A, 2, 1)), gt).summary()
    assert "footprint shift: (-2, -1) px" in moved and "traces: median r = nan" in moved


# --------------------------------------------------------------------------- registration


def register_phase_correlation(movie: np.ndarray, upsample: int = 20) -> np.ndarray:
    """A real rigid registration: scikit-image phase correlation of lightly smoothed frames
    against the mean frame, then once more against the mean of the registered frames.
    Returns the per-frame correction (dy, dx) px."""
    from skimage.registration import phase_cross_correlation

    frames = np.stack([ndimage.gaussian_filter(f.astype(float), 1.0) for f in movie])
    template = frames.mean(0)
    for _ in range(2):
        corr = np.array(
            [
                phase_cross_correlation(template, f, upsample_factor=upsample, normalization=None)[
                    0
                ]
                for f in frames
            ]
        )
        template = np.stack(
            [ndimage.shift(f, s, order=1) for f, s in zip(frames, corr, strict=True)]
        ).mean(0)
    return corr


def test_phase_correlation_registration_scores_below_half_a_pixel():
    # The default BrainMotion (10 µm) on 16 cells: with the default 6, so few flashing
    # cells make whole-frame phase correlation lock onto cell-to-cell offsets.
    with pytest.warns(SpecWarning):
        rec = make_recording(n_cells=16, motion=True).compute()
    gt = rec.ground_truth
    true = gt.shifts.values
    assert np.abs(true).max() > 5.0  # real motion, many pixels
    correction = register_phase_correlation(rec.observed.values)
    d = gt.detectable_subset()
    est = Estimate(A=d.A_observed.values, C=d.C.values, shifts=correction)
    # The oracle footprints sit at rest, not in the registered (template) frame: keep
    # "auto" from moving them by the template's offset.
    report = score(est, gt, footprint_shift=None)
    assert report.shift_rmse < 0.5  # px, after removing the template's constant offset
    assert report.recall == 1.0
    assert score(Estimate(A=est.A, shifts=np.zeros_like(true)), gt).shift_rmse > 2.0


# --------------------------------------------------------------------------- out of core


class KeyLog(dask.callbacks.Callback):
    """Records the name of every dask task that runs."""

    def __init__(self):
        super().__init__()
        self.names: set[str] = set()

    def _pretask(self, key, dsk, state):
        self.names.add(key[0] if isinstance(key, tuple) else key)


def test_scoring_a_zarr_store_never_reads_the_movie(tmp_path):
    rec = make_recording(duration_s=1.0, chunks={"frame": 4})
    rec.to_zarr(tmp_path / "rec.zarr")
    lazy = minisim.open_recording(tmp_path / "rec.zarr")
    gt = lazy.ground_truth
    movie_layer = lazy.observed.data.name
    assert movie_layer.startswith("read-observed-")
    d = gt.detectable_subset()
    est = Estimate(A=d.A_observed, C=d.C, S=d.S)  # lazy xarray inputs are fine
    with KeyLog() as log:
        report = score(est, gt)
    assert report.recall == 1.0 and report.trace_corr > 0.99
    assert log.names, "scoring computed nothing?"
    assert not any(movie_layer in name for name in log.names)  # footprints, traces only
    assert any("A_observed" in name for name in log.names)
    assert score(perfect(rec.ground_truth), rec.ground_truth) == report

    # ROI traces stream over the stored frame chunks and equal the eager computation
    A = d.A_observed.values
    with KeyLog() as log:
        traces = footprint_roi_trace(lazy.observed, A)
    assert not log.names  # nothing computed yet
    assert isinstance(traces.data, da.Array) and traces.chunks[1] == lazy.observed.chunks[0]
    eager = footprint_roi_trace(lazy.observed.values, A)
    np.testing.assert_array_equal(traces.values, eager)
    # and they follow the calcium: bright ROI frames are bright calcium frames
    r = [np.corrcoef(t, c)[0, 1] for t, c in zip(eager, d.C.values, strict=True)]
    assert np.median(r) > 0.8


# --------------------------------------------------------------------------- benchmark


def roi_pipeline(rec) -> Estimate:
    """An oracle-footprint pipeline: ROI means of the movie as traces (streamed)."""
    A = rec.ground_truth.A_observed.values
    return Estimate(A=A, C=footprint_roi_trace(rec.observed, A).values)


@pytest.fixture(scope="module")
def swept():
    base = make_spec(n_cells=4, n_px=64, duration_s=1.0)
    axes = {"seed": [0, 1], "steps.sensor.photons_per_unit": [1.0, 500.0]}
    return list(sweep(base, axes))


def test_benchmark_table(swept):
    # every planted cell counts: at 1 photon per unit none is detectable
    table = benchmark(roi_pipeline, swept, score_options={"restrict_to_detectable": False})
    assert isinstance(table, xr.Dataset) and table.sizes == {"run": 4}
    np.testing.assert_array_equal(table["seed"], [0, 0, 1, 1])
    np.testing.assert_array_equal(table["steps.sensor.photons_per_unit"], [1, 500, 1, 500])
    assert list(table["cache_key"].values) == [s.cache_key() for s in swept]
    assert np.all(table["recall"] == 1.0) and np.all(table["n_true"] == 4)
    assert np.all(np.isnan(table["shift_rmse"])) and np.all(table["footprint_shift_y"] == 0)
    assert table["n_requested"].dtype == np.int64 and np.all(table["n_requested"] == 4)
    grid = table.set_index(run=["seed", "steps.sensor.photons_per_unit"]).unstack("run")
    assert grid["trace_corr"].dims == ("seed", "steps.sensor.photons_per_unit")
    bright = grid.sel({"steps.sensor.photons_per_unit": 500.0})
    dim = grid.sel({"steps.sensor.photons_per_unit": 1.0})
    # Shot noise: 20 frames of 4 dim cells give a noisy correlation (0.1–0.95 over seeds),
    # so compare each seed's dim run with its bright one and the mean with a bound.
    assert np.all(bright["trace_corr"] > 0.99)
    assert np.all(dim["trace_corr"] < bright["trace_corr"] - 0.05)
    assert float(dim["trace_corr"].mean()) < 0.8
    assert np.all(dim["n_detectable"] == 0) and np.all(bright["n_detectable"] >= 3)
    # defaults: the detectable denominator
    assert np.all(benchmark(roi_pipeline, swept[1:2])["n_true"] == table["n_detectable"][1])


def test_benchmark_on_a_cluster_matches_sequential(swept):
    from distributed import Client, LocalCluster

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # port/resource chatter of a throwaway cluster
        cluster = LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        )
    with cluster, Client(cluster) as client:
        on_cluster = benchmark(roi_pipeline, swept[:2], client=client)
    xr.testing.assert_identical(on_cluster, benchmark(roi_pipeline, swept[:2]))
