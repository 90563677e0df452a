"""Rung 1 end to end: laziness, ground truth, and the movie against an eager reference."""

from __future__ import annotations

import time

import numpy as np
import pytest

from minisim import CellActivity, Composite, Output, PlaceNeurons, Spec, simulate

from .conftest import small_acquisition


def test_rung1_verbatim(ladder_acq, no_compute):
    # The examples ladder, rung 1, as a user types it (nothing computes while building).
    from minisim import Acquisition, ImageSensor, Optics

    acq = Acquisition(
        fps=20.0,
        duration_s=20.0,
        optics=Optics(magnification=8.0),
        image_sensor=ImageSensor(n_px_height=200, n_px_width=200, pixel_pitch_um=8.0),
    )
    rec = simulate(
        Spec(acquisition=acq, seed=1, steps=[PlaceNeurons(), CellActivity(), Composite()])
    )
    gt = rec.ground_truth
    n = gt.n_units
    assert n == round(25000 * 0.2 * 0.2 * 0.2)  # density × 200 µm × 200 µm × 200 µm
    assert gt.centers_um.shape == (n, 3)
    assert gt.A_planted.shape == (n, 200, 200)
    assert gt.C.shape == (n, 400) and gt.S.shape == (n, 400)
    assert rec.observed.shape == (400, 200, 200)
    assert rec.observed.dims == ("frame", "y", "x")


@pytest.fixture(scope="module")
def small_rec():
    spec = Spec(acquisition=small_acquisition(px=48, duration_s=3.0), seed=5,
                steps=[PlaceNeurons(), CellActivity(), Composite()])  # fmt: skip
    return simulate(spec, chunks={"frame": 16}).compute()


def test_movie_is_sum_of_traces_times_footprints(small_rec):
    gt = small_rec.ground_truth
    C = gt.C.values.astype(np.float32)
    A = gt.A_planted.values.astype(np.float32)
    eager = np.zeros(small_rec.observed.shape, np.float32)
    for i in range(len(C)):
        eager += C[i][:, None, None] * A[i][None]
    movie = small_rec.observed.values
    assert movie.dtype == np.float32
    assert movie.max() > 0
    # Same products, summed in the same cell order: equal up to float32 rounding.
    np.testing.assert_allclose(movie, eager, rtol=1e-6, atol=1e-6 * eager.max())


def test_sharp_disks_on_black(small_rec):
    gt = small_rec.ground_truth
    A = gt.A_planted.values
    assert set(np.unique(A)) <= {0.0, 1.0}  # soma morphology without optics: binary
    frame = small_rec.observed.values[10]
    lit = A.max(axis=0) > 0
    assert np.all(frame[~lit] == 0)  # black between the cells
    assert np.all(frame[lit] > 0)  # every cell pixel glows (f0 > 0)


def test_nothing_frame_sized_computes_while_building(no_compute):
    spec = Spec(acquisition=small_acquisition(px=200, duration_s=7200.0), seed=1,
                steps=[PlaceNeurons(), CellActivity(), Composite()])  # fmt: skip
    start = time.process_time()
    rec = simulate(spec)
    # A 2-hour recording builds in well under a second of CPU (it is only a graph).
    assert time.process_time() - start < 1.0
    assert rec.observed.shape == (144_000, 200, 200)
    graph = rec.observed.data.__dask_graph__()
    assert len(graph) < 5 * (len(rec.observed.chunks[0]) + 144_000 // 1024)  # tasks per chunk


def test_no_activity_gives_a_black_movie():
    spec = Spec(acquisition=small_acquisition(px=32, duration_s=1.0), seed=1,
                steps=[PlaceNeurons(), Composite()])  # fmt: skip
    rec = simulate(spec)
    assert rec.observed.shape == (20, 32, 32)
    assert float(abs(rec.observed).max()) == 0.0
    with pytest.raises(AttributeError, match="cell_activity"):
        _ = rec.ground_truth.C


def test_until_and_stages():
    spec = Spec(acquisition=small_acquisition(px=32, duration_s=1.0), seed=1,
                steps=[PlaceNeurons(), CellActivity(), Composite()],
                output=Output(save_intermediates=True))  # fmt: skip
    full = simulate(spec)
    assert full.stages == ["cells_only"]
    assert np.array_equal(full.stage("composite").values, full.observed.values)
    early = simulate(spec, until="cell_activity")
    assert float(early.observed.max()) == 0.0  # no pixels yet
    assert np.array_equal(early.ground_truth.C.values, full.ground_truth.C.values)
    with pytest.raises(KeyError, match="save_intermediates"):
        simulate(spec.model_copy(update={"output": Output()})).stage("cells_only")
    with pytest.raises(ValueError, match="cells_only"):
        simulate(spec, until="sensor")


def test_float64_output():
    spec = Spec(acquisition=small_acquisition(px=32, duration_s=1.0), seed=1,
                steps=[PlaceNeurons(), CellActivity(), Composite()],
                output=Output(store_dtype="float64"))  # fmt: skip
    rec = simulate(spec)
    assert rec.observed.dtype == np.float64
    assert float(rec.observed.max()) > 0


def test_ground_truth_view():
    spec = Spec(acquisition=small_acquisition(px=40, duration_s=1.0), seed=2,
                steps=[PlaceNeurons(), CellActivity(), Composite()])  # fmt: skip
    rec = simulate(spec)
    gt = rec.ground_truth
    assert np.array_equal(gt.depth_um.values, gt.centers_um.values[:, 0])
    assert gt.amplitude_per_cell.dims == ("cell",)
    assert "A_observed" in dir(gt) and "observed" not in dir(gt)
    assert gt.focal_depth_um is None  # no optics step
    assert np.array_equal(gt.A_observed.values, gt.A_planted.values)  # without optics
    sub = rec.observed.isel(frame=slice(5, 9))
    assert np.allclose(sub.time_s.values, np.arange(5, 9) / 20.0)
    assert rec.spec == spec
