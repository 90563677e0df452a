"""Non-rigid brain motion: a smooth displacement field on top of the rigid path."""

from __future__ import annotations

import dask
import numpy as np
import pytest
from pydantic import ValidationError
from scipy.ndimage import map_coordinates

from minisim import (
    BrainMotion,
    CellActivity,
    Composite,
    NeuronPopulation,
    Neuropil,
    PlaceNeurons,
    Sensor,
    Spec,
    simulate,
)
from minisim.conformance import StepConformance
from minisim.metrics import displacement_rmse
from minisim.steps import nonrigid_motion as nr
from minisim.steps.brain_motion import shift_and_crop

from .conftest import NothingComputes, small_acquisition

pytestmark = pytest.mark.filterwarnings("ignore:Motion extent:minisim.SpecWarning")


def nonrigid_spec(px=64, seconds=10.0, seed=4, cells=None, **motion) -> Spec:
    motion = {"motion_amplitude_um": 2.0, "max_shift_um": 4.0, "nonrigid_um": 1.5,
              "nonrigid_scale_um": 24.0, **motion}  # fmt: skip
    place = PlaceNeurons() if cells is None else PlaceNeurons(populations=[cells])
    steps = [place, CellActivity(brightness_cv=0.0), Composite(), BrainMotion(**motion)]
    return Spec(acquisition=small_acquisition(px=px, duration_s=seconds), seed=seed, steps=steps)


def nonrigid_part(gt) -> np.ndarray:
    """(frame, y, x, 2) displacement minus the rigid shift."""
    return gt.displacement.values - gt.shifts.values[:, None, None, :]


# --------------------------------------------------------------------------- kernels


def test_bspline_weights_are_a_partition_of_unity_and_interpolate_closed_form():
    nodes = nr.node_positions(50, 12.5)
    assert nodes[0] < -12 and nodes[-1] > 49 + 12  # one node beyond each side of the field
    w = nr.bspline_weights(np.arange(50.0), nodes)
    assert np.all(w >= 0) and np.allclose(w.sum(axis=1), 1.0, atol=1e-14)
    assert np.all((w > 0).sum(axis=1) <= 4)  # compact support: 4 nodes per pixel
    # At a node the cubic B-spline gives (c[j−1] + 4c[j] + c[j+1]) / 6, in 2-D per axis.
    rng = np.random.default_rng(0)
    grid = nr.node_positions(41, 10.0)  # nodes fall on pixels 0, 10, 20, 30, 40
    coeffs = rng.normal(size=(1, len(grid), len(grid), 2))
    wy, wx = nr.field_weights((41, 41), grid, grid)
    field = nr.displacement_field(np.zeros((1, 2)), coeffs, wy, wx)[0]
    smooth = np.array([1.0, 4.0, 1.0]) / 6
    for j in range(1, len(grid) - 1):
        for i in range(1, len(grid) - 1):
            expected = np.einsum(
                "a,b,abk->k", smooth, smooth, coeffs[0, j - 1 : j + 2, i - 1 : i + 2]
            )
            np.testing.assert_allclose(field[int(grid[j]), int(grid[i])], expected, atol=1e-12)


def test_field_inner_is_the_pixel_mean_of_the_interpolated_fields():
    rng = np.random.default_rng(1)
    nodes_y, nodes_x = nr.node_positions(30, 8.0), nr.node_positions(20, 8.0)
    a = rng.normal(size=(3, len(nodes_y), len(nodes_x), 2))
    b = rng.normal(size=a.shape)
    wy, wx = nr.field_weights((30, 20), nodes_y, nodes_x)
    fa = nr.displacement_field(np.zeros((3, 2)), a, wy, wx)
    fb = nr.displacement_field(np.zeros((3, 2)), b, wy, wx)
    inner = nr.field_inner(a, b, nr.field_gram(wy), nr.field_gram(wx))
    np.testing.assert_allclose(inner, (fa * fb).sum(-1).mean(axis=(1, 2)), rtol=1e-12)


def test_warp_matches_scipy_bilinear_and_the_rigid_kernel():
    rng = np.random.default_rng(2)
    canvas = rng.random((40, 44)).astype(np.float32)
    top, left, height, width = 6, 7, 28, 30
    yy, xx = np.mgrid[0:height, 0:width].astype(float)
    field = np.stack([2.5 * np.sin(yy / 7) + 0.3, -1.7 * np.cos(xx / 9) + 0.2 * yy / 10], -1)
    ours = nr.warp_and_crop(canvas, field, top, left)
    coords = np.stack([yy + top - field[..., 0], xx + left - field[..., 1]])
    ref = map_coordinates(canvas.astype(float), coords, order=1, mode="constant")
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    # A uniform field is the rigid shift, and samples outside the canvas read zero.
    for dy, dx in [(1.25, -2.5), (-3.7, 0.3), (9.0, -8.5)]:
        uniform = np.broadcast_to(np.array([dy, dx]), (height, width, 2))
        rigid = shift_and_crop(canvas, dy, dx, top, left, height, width)
        np.testing.assert_allclose(nr.warp_and_crop(canvas, uniform, top, left), rigid, atol=1e-6)


# --------------------------------------------------------------------------- physics


@pytest.fixture(scope="module")
def drift_only():
    """The non-rigid part as a pure drift (no coupling to the rigid path), 60 s."""
    return simulate(nonrigid_spec(px=48, seconds=60.0, nonrigid_coupling=0.0,
                                  nonrigid_drift_s=2.0)).ground_truth  # fmt: skip


def test_amplitude_is_the_rms_magnitude_and_stays_within_the_bound(drift_only):
    part = nonrigid_part(drift_only)
    rms = np.sqrt((part**2).sum(-1).mean())
    assert rms == pytest.approx(1.5, rel=1e-6)  # px = µm here; the clamp never acted
    assert np.hypot(part[..., 0], part[..., 1]).max() <= nr.NONRIGID_BOUND_FACTOR * 1.5
    assert np.all(part[0] == 0)  # frame 0 is the rest position


def test_the_field_varies_in_space_and_drifts_in_time(drift_only):
    part = nonrigid_part(drift_only)
    # In space: within a frame the field differs across the 48 px field by about its RMS.
    spatial_std = part.std(axis=(1, 2)).mean()
    assert spatial_std > 0.5, spatial_std
    corner_gap = np.abs(part[:, :8, :8].mean((1, 2)) - part[:, -8:, -8:].mean((1, 2)))
    assert corner_gap.mean() > 0.5
    # In time: an OU drift with a 2 s (40-frame) time constant decorrelates as e^(−lag/τ).
    series = part[:, 24, 24, 0]
    series = series - series.mean()

    def autocorr(lag):
        return (series[:-lag] * series[lag:]).mean() / (series * series).mean()

    assert 0.85 < autocorr(4) < 0.97  # e^(−0.1) = 0.905
    assert 0.2 < autocorr(40) < 0.55  # e^(−1) = 0.37, ± sampling error of 30 τ


def test_coupled_field_follows_the_rigid_drive():
    gt = simulate(nonrigid_spec(px=48, seconds=20.0, nonrigid_coupling=1.0)).ground_truth
    part, shifts = nonrigid_part(gt), gt.shifts.values
    # A per-pixel gain on the rigid shift: |r| = 1 wherever no node hit the clamp.
    for axis in (0, 1):
        values = part[..., axis].reshape(len(shifts), -1)
        centred = values - values.mean(0)
        drive = shifts[:, axis] - shifts[:, axis].mean()
        r = np.abs(drive @ centred) / np.sqrt((drive @ drive) * (centred**2).sum(0))
        assert np.median(r) > 0.9999 and np.quantile(r, 0.1) > 0.99, np.quantile(r, [0.1, 0.5])
        slope = (drive @ centred) / (drive @ drive)
        assert slope.std() > 0.1  # the gain varies across the field


def isolated_cells(spacing=22.0, n=3):
    offsets = (np.arange(n) - (n - 1) / 2) * spacing
    positions = [(40.0, float(y), float(x)) for y in offsets for x in offsets]
    return NeuronPopulation(positions_um=positions, soma_radius_um=3.5, irregularity=0.0)


def test_each_isolated_cell_sits_at_rest_plus_the_displacement_at_its_centroid():
    """The issue's check: in a noise-free movie, the intensity-weighted centroid of every
    isolated in-focus cell is at its rest position plus gt.displacement there (the
    displacement at the pixel it is seen at, d(t, p) with p − d(t, p) = rest), within
    0.1 px in every frame. (The relation is exact to first order in the field's gradient;
    here the worst cell is off by about 0.06 px while the field bends by up to 6 px.)"""
    spec = nonrigid_spec(px=72, seconds=6.0, cells=isolated_cells(), motion_amplitude_um=3.0,
                         max_shift_um=5.0, nonrigid_um=1.5, nonrigid_scale_um=40.0)  # fmt: skip
    rec = simulate(spec)
    ds = rec.dataset.compute()
    gt = rec.ground_truth
    movie = ds.observed.values.astype(np.float64)
    field = gt.displacement.values
    footprints = ds.A_planted.values.astype(np.float64)
    yy, xx = np.indices(movie.shape[1:])
    assert gt.n_units == 9
    worst = 0.0
    for fp in footprints:
        rest = np.array([(fp * yy).sum(), (fp * xx).sum()]) / fp.sum()
        for t in range(movie.shape[0]):
            guess = rest + field[t, int(round(rest[0])), int(round(rest[1]))]
            window = (np.abs(yy - guess[0]) < 8) & (np.abs(xx - guess[1]) < 8)  # follows it
            frame = movie[t] * window
            seen = np.array([(frame * yy).sum(), (frame * xx).sum()]) / frame.sum()
            d = np.array([map_coordinates(field[t, ..., k], seen[:, None], order=1)[0]
                          for k in (0, 1)])  # fmt: skip
            worst = max(worst, np.abs(seen - d - rest).max())
    assert worst < 0.1, worst
    # … and the field is far from rigid there: the cells move differently.
    part = nonrigid_part(gt)
    assert np.abs(part).max() > 3.0


# --------------------------------------------------------------------------- engine


def test_simulate_and_the_displacement_stay_lazy():
    with NothingComputes():
        rec = simulate(nonrigid_spec())
        gt = rec.ground_truth
        field = gt.displacement
        sliced = field.isel(frame=slice(10, 20))
    assert field.dims == ("frame", "y", "x", "axis") and field.shape == (200, 64, 64, 2)
    assert list(field.axis.values) == ["y", "x"] and field.attrs["units"] == "px"
    assert sliced.shape == (10, 64, 64, 2)
    # the compact truth: node time courses, not frame-sized fields
    assert rec.dataset.nonrigid_y.dims == ("frame", "node_y", "node_x")
    assert rec.dataset.nonrigid_y.shape[1:] == (6, 6)  # ceil(63 / 24) + 1 + 2 nodes per axis


def test_zero_nonrigid_changes_nothing():
    plain = nonrigid_spec(nonrigid_um=0.0, nonrigid_scale_um=100.0)
    other = nonrigid_spec(nonrigid_um=0.0, nonrigid_scale_um=7.0, nonrigid_drift_s=1.0)
    a, b = simulate(plain).dataset, simulate(other).dataset
    assert "nonrigid_y" not in a and "node_y" not in a.coords
    assert np.array_equal(a.observed.values, b.observed.values)
    # Without a non-rigid field the displacement is the rigid shift at every pixel.
    gt = simulate(plain).ground_truth
    field = gt.displacement.values
    assert np.array_equal(field, np.broadcast_to(gt.shifts.values[:, None, None], field.shape))


def _bytes(spec, chunks=None, scheduler="threads"):
    with dask.config.set(scheduler=scheduler):
        rec = simulate(spec, chunks=chunks)
        ds = rec.dataset.compute()
        field = rec.ground_truth.displacement.values
    out = {n: np.ascontiguousarray(ds[n].values).tobytes() for n in ds.variables}
    out["displacement"] = field.tobytes()
    return out


def test_chunking_and_processes_give_identical_bytes():
    # longer than one scan block, so the drift's state crosses a block boundary
    spec = Spec(acquisition=small_acquisition(px=32, duration_s=15.0), seed=9, steps=[
        PlaceNeurons(), CellActivity(), Composite(), Neuropil(),
        BrainMotion(motion_amplitude_um=1.0, max_shift_um=2.0, nonrigid_um=1.0,
                    nonrigid_scale_um=12.0), Sensor()])  # fmt: skip
    reference = _bytes(spec, chunks=-1)
    for chunks, scheduler in [(7, "threads"), (61, "processes"), (256, "sync")]:
        other = _bytes(spec, chunks=chunks, scheduler=scheduler)
        changed = sorted(n for n in reference if reference[n] != other[n])
        assert not changed, (chunks, scheduler, changed)


class TestNonrigidConformance(StepConformance):
    step = BrainMotion(motion_amplitude_um=1.0, max_shift_um=2.0, nonrigid_um=0.8,
                       nonrigid_scale_um=10.0)  # fmt: skip


def test_margin_holds_the_field_bound():
    acq = small_acquisition(px=40)
    rigid = BrainMotion(max_shift_um=6.5, motion_amplitude_um=3.0)
    bent = BrainMotion(max_shift_um=6.5, motion_amplitude_um=3.0, nonrigid_um=1.2)
    assert rigid.margin_px(acq) == 8
    assert bent.margin_px(acq) == 8 + 10  # ceil(6.5 + 8 × 1.2) + 1 = 18


def test_too_many_nodes_is_refused_with_the_fix():
    big = small_acquisition(px=400, duration_s=1.0)
    with pytest.raises(ValidationError, match=r"nonrigid_scale_um=5 gives .*raise nonrigid"):
        Spec(acquisition=big, steps=[BrainMotion(nonrigid_um=0.4, nonrigid_scale_um=5.0)])


# --------------------------------------------------------------------------- the metric


def test_displacement_rmse_dense_and_patches():
    rng = np.random.default_rng(3)
    truth = rng.normal(size=(5, 12, 10, 2))
    assert displacement_rmse(truth, truth) == 0.0
    assert displacement_rmse(-truth, truth, correction=True) == 0.0
    offset = truth + np.array([0.3, -0.4])
    assert displacement_rmse(offset, truth) == pytest.approx(np.sqrt((0.09 + 0.16) / 2))
    # Patches are scored against the truth averaged over each tile (3 × 2 tiles of 4 × 5).
    tiles = truth.reshape(5, 3, 4, 2, 5, 2).mean(axis=(2, 4))
    assert displacement_rmse(tiles, truth) == pytest.approx(0.0, abs=1e-15)
    assert displacement_rmse(-(tiles + 0.5), truth, correction=True) == pytest.approx(0.5)
    # Lazy truth (a recording's gt.displacement) gives the same number.
    lazy = dask.array.from_array(truth, chunks=(2, 12, 10, 2))
    assert displacement_rmse(tiles + 0.5, lazy) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="frames"):
        displacement_rmse(tiles[:3], truth)
    with pytest.raises(ValueError, match="patches"):
        displacement_rmse(np.zeros((5, 20, 3, 2)), truth)


def test_rigid_estimate_scores_the_nonrigid_part(drift_only):
    # Registering rigidly (the true shifts, as a correction) leaves exactly the non-rigid
    # part: its RMS over pixels, frames and axes is nonrigid_um / √2.
    field = drift_only.displacement
    rigid = -np.broadcast_to(drift_only.shifts.values[:, None, None, :], field.shape)
    score = displacement_rmse(rigid, field, correction=True)
    assert score == pytest.approx(1.5 / np.sqrt(2), rel=1e-6)
    one_patch = rigid.mean(axis=(1, 2), keepdims=True)
    assert displacement_rmse(one_patch, field, correction=True) < score
