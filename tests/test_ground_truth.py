"""The ground truth as data: its units (cells in the field at rest), the margin cells kept
apart, and per-cell quantities computed once and kept numpy-backed."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from dask.callbacks import Callback

import minisim
from minisim import BrainMotion, simulate
from minisim.metrics import hungarian_match
from minisim.testing import make_recording, make_spec, score


class CountComputes(Callback):
    """Counts dask computations (each ``compute``/``.values`` of a lazy array is one)."""

    def __init__(self):
        super().__init__()
        self.n = 0

    def _start(self, dsk):
        self.n += 1


def moving_spec():
    """Cells on a canvas wider than the field: some live in the motion margin."""
    spec = make_spec(n_cells=6, motion=BrainMotion(max_shift_um=12.0, motion_amplitude_um=3.0))
    steps = list(spec.steps)
    steps[0] = minisim.PlaceNeurons(density_per_mm3=60_000.0, depth_range_um=(40.0, 60.0))
    return spec.model_copy(update={"steps": tuple(steps)})


@pytest.fixture(scope="module")
def moving():
    return simulate(moving_spec())


def test_per_cell_reads_compute_once():
    rec = make_recording()  # with a sensor: `detectable` depends on the traces
    gt = rec.ground_truth
    assert isinstance(rec.dataset["detectable"].data, da.Array), "the fixture must be lazy"
    with CountComputes() as counter:
        flags = [bool(rec.ground_truth.detectable[u]) for u in range(gt.n_units) for _ in range(9)]
        _ = gt.amplitude.values, gt.centers_um.values, gt.focal_depth_um, gt.in_focus.values
    assert counter.n == 1, f"{counter.n} computations for repeated per-cell reads"
    assert flags == [f for f in np.asarray(rec.dataset["detectable"].values) for _ in range(9)]
    assert rec.ground_truth is gt  # one view per recording, so the cache is shared


def test_per_cell_quantities_are_numpy_frame_sized_ones_stay_lazy():
    rec = make_recording()
    gt = rec.ground_truth
    with CountComputes() as counter:
        C, A = gt.C, gt.A_observed
    assert counter.n == 0 and isinstance(C.data, da.Array) and isinstance(A.data, da.Array)
    for name in ("detectable", "amplitude", "centers_um", "depth_um", "in_fov", "in_focus"):
        assert isinstance(getattr(gt, name).data, np.ndarray), name
    # numpy idioms on per-cell quantities, checked against the stored values
    amplitude = np.asarray(rec.dataset["amplitude"].values)
    np.testing.assert_array_equal(np.argsort(gt.amplitude), np.argsort(amplitude))
    assert float(np.max(gt.amplitude)) == amplitude.max()
    # and on the per-cell spike totals of the lazy S
    S = np.asarray(gt.S.values)
    np.testing.assert_array_equal(gt.n_spikes.values, S.sum(axis=1))
    np.testing.assert_array_equal(np.argsort(gt.n_spikes), np.argsort(S.sum(axis=1)))
    np.testing.assert_array_equal(np.argsort(gt.S.sum(axis=1).values), np.argsort(S.sum(axis=1)))


def test_simulate_and_ground_truth_view_compute_nothing():
    with CountComputes() as counter:
        rec = make_recording()
        gt = rec.ground_truth
        _ = gt.n_units, gt.C, gt.S, gt.A_planted
    assert counter.n == 0


def test_units_are_the_cells_in_the_field_at_rest(moving):
    gt = moving.ground_truth
    everything = gt.including_margin()
    in_fov = np.asarray(moving.dataset["in_fov"].values, bool)
    assert 0 < in_fov.sum() < in_fov.size, "the fixture must have margin cells"
    assert gt.n_units == in_fov.sum() and gt.margin.n_units == (~in_fov).sum()
    assert everything.n_units == moving.dataset.sizes["cell"]
    assert gt.in_fov.values.all() and not gt.margin.in_fov.values.any()
    np.testing.assert_array_equal(gt.cell.values, np.flatnonzero(in_fov))
    np.testing.assert_array_equal(gt.margin.cell.values, np.flatnonzero(~in_fov))
    # a unit's planted footprint has light in the field; a margin cell's has none
    A = gt.A_planted.values
    assert (A.reshape(len(A), -1).max(axis=1) > 0).all()
    assert gt.margin.A_planted.values.max() == 0
    # the per-cell subset matches the full table, quantity by quantity
    np.testing.assert_array_equal(gt.centers_um.values, everything.centers_um.values[in_fov])
    np.testing.assert_array_equal(gt.C.values, everything.C.values[in_fov])


def test_margin_cells_still_add_light(moving):
    """The movie is made from every cell: dropping the margin cells changes the light."""
    margin = moving.ground_truth.margin
    assert margin.n_units > 0
    # their blurred skirts reach into the field although their sharp footprints do not
    assert margin.A_planted.values.max() == 0 and margin.A_observed.values.max() > 0


def test_a_perfect_estimate_of_the_visible_cells_has_recall_one(moving):
    gt = moving.ground_truth
    match = hungarian_match(gt.A_observed.values, gt.A_observed)
    assert match.recall() == 1.0 and match.n_true == gt.n_units
    report = score(minisim.testing.Estimate(A=gt.A_observed.values), moving,
                   restrict_to_detectable=False)  # fmt: skip
    assert report.recall == 1.0 and report.precision == 1.0
    assert report.n_true == gt.n_units < gt.including_margin().n_units


def test_a_reopened_store_presents_the_same_units(moving, tmp_path):
    small = moving.dataset.isel(frame=slice(0, 4))
    rec = minisim.Recording(small)
    rec.to_zarr(tmp_path / "r.zarr")
    back = minisim.open_recording(tmp_path / "r.zarr").ground_truth
    gt = rec.ground_truth
    assert back.n_units == gt.n_units and back.margin.n_units == gt.margin.n_units
    np.testing.assert_array_equal(back.cell.values, gt.cell.values)
    np.testing.assert_array_equal(back.detectable.values, gt.detectable.values)
    assert isinstance(back.detectable.data, np.ndarray)
