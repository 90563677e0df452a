"""Rung 3: rigid brain motion on a margin-padded canvas."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from scipy.ndimage import shift as ndi_shift

from minisim import (
    BrainMotion,
    CellActivity,
    CellOptics,
    Composite,
    NeuronPopulation,
    PlaceNeurons,
    Spec,
    SpecWarning,
    simulate,
)
from minisim.steps.brain_motion import clamp_radius, shift_and_crop

from .conftest import NothingComputes, small_acquisition

pytestmark = pytest.mark.filterwarnings("ignore:Motion extent:minisim.SpecWarning")


def test_rung3_verbatim(ladder_acq):
    acq = ladder_acq
    with NothingComputes():
        rec = simulate(Spec(acquisition=acq, seed=1, steps=[
            PlaceNeurons(), CellActivity(), CellOptics(), Composite(), BrainMotion()]))  # fmt: skip
        gt = rec.ground_truth
    assert gt.shifts.shape == (400, 2) and gt.shifts.dims == ("frame", "shift_axis")
    assert rec.observed.shape == (400, 200, 200)
    assert gt.shifts.values[0].tolist() == [0.0, 0.0]
    # Slicing the movie slices the motion truth with it.
    clip = rec.observed.isel(frame=slice(100, 110))
    assert np.array_equal(clip.shift_y.values, gt.shifts.values[100:110, 0])


def one_cell(trajectory, px=48, y=0.0, x=0.0):
    n = len(trajectory)
    acq = small_acquisition(px=px, duration_s=n / 20.0)
    pop = NeuronPopulation(positions_um=[(30.0, y, x)], soma_radius_um=4.0, irregularity=0.0)
    steps = [PlaceNeurons(populations=[pop]), CellActivity(brightness_cv=0.0), Composite(),
             BrainMotion(trajectory_um=trajectory)]  # fmt: skip
    return Spec(acquisition=acq, seed=0, steps=steps)


def centroid(frame):
    yy, xx = np.indices(frame.shape)
    return np.array([(frame * yy).sum(), (frame * xx).sum()]) / frame.sum()


def test_explicit_trajectory_moves_content_down_right():
    spec = one_cell([(0.0, 0.0), (3.0, 2.0), (-1.5, 0.5)])
    rec = simulate(spec)
    obs = rec.observed.values
    assert np.allclose(centroid(obs[1]) - centroid(obs[0]), [3.0, 2.0], atol=1e-4)
    assert np.allclose(centroid(obs[2]) - centroid(obs[0]), [-1.5, 0.5], atol=1e-4)
    assert rec.ground_truth.shifts.values.tolist() == [[0, 0], [3, 2], [-1.5, 0.5]]
    # Positions stay in the optical-centre frame, whatever the margin.
    assert rec.ground_truth.centers_um.values.tolist() == [[30.0, 0.0, 0.0]]


def test_off_fov_tissue_enters():
    # A cell just outside the bottom edge at rest: invisible, then moved 20 µm up into view.
    spec = one_cell([(0.0, 0.0), (-20.0, 0.0)], px=48, y=30.0)
    rec = simulate(spec)
    obs = rec.observed.values
    assert obs[0].sum() == 0 and obs[1].sum() > 0
    gt = rec.ground_truth
    # a margin cell: not a unit of the ground truth, but kept (and lit) in the margin view
    assert gt.n_units == 0 and gt.margin.n_units == 1
    margin = gt.margin
    assert not bool(margin.in_fov[0]) and not bool(margin.detectable[0])
    assert gt.including_margin().n_units == 1


def test_margin_is_sized_from_the_motion():
    acq = small_acquisition(px=40)
    step = BrainMotion(max_shift_um=6.5, motion_amplitude_um=3.0)
    assert step.margin_px(acq) == 8  # ceil(6.5 / 1 µm) + 1
    assert BrainMotion(trajectory_um=[(0.0, 0.0), (2.2, -4.0)]).margin_px(acq) == 5


def test_cells_are_counted_over_the_canvas():
    acq = small_acquisition(px=40, duration_s=1.0)
    plain = simulate(Spec(acquisition=acq, steps=[PlaceNeurons(density_per_mm3=100000.0)]))
    moving = simulate(Spec(acquisition=acq, steps=[PlaceNeurons(density_per_mm3=100000.0), BrainMotion(
        max_shift_um=5.0, motion_amplitude_um=2.0)]))  # fmt: skip
    assert plain.ground_truth.n_units == round(100000 * 0.04 * 0.04 * 0.2)
    canvas_um = 40 + 2 * 6
    everything = moving.ground_truth.including_margin()  # the units are only the visible ones
    assert everything.n_units == round(100000 * (canvas_um / 1000) ** 2 * 0.2)
    assert moving.ground_truth.n_units + moving.ground_truth.margin.n_units == everything.n_units


def physical(seconds=60.0, **kw):
    acq = small_acquisition(px=100, duration_s=seconds)
    return simulate(
        Spec(acquisition=acq, seed=3, steps=[PlaceNeurons(), BrainMotion(**kw)])
    ).ground_truth


def band_power(signal, fps, f0, half_width=0.5):
    freqs = np.fft.rfftfreq(len(signal), 1 / fps)
    power = np.abs(np.fft.rfft(signal - signal.mean())) ** 2
    return power[np.abs(freqs - f0) <= half_width].sum(), freqs[1:][np.argmax(power[1:])]


def test_physical_model_amplitude_and_start():
    shifts = physical().shifts.values
    assert shifts[0].tolist() == [0.0, 0.0]
    radius = np.hypot(shifts[:, 0], shifts[:, 1])
    assert np.percentile(radius, 99) == pytest.approx(10.0, rel=1e-6)  # µm = px here
    assert radius.max() <= 15.0 + 1e-9
    assert np.median(radius) < 6


def test_physical_model_rhythm_on_the_locomotion_axis():
    pure = physical(locomotion_fraction=1.0).shifts.values
    power_y, peak = band_power(pure[:, 0], 20.0, 7.0)
    assert abs(peak - 7.0) <= 0.5
    assert np.all(pure[:, 1] == 0)  # the rhythm shakes one axis only
    mixed = physical().shifts.values  # defaults: 25% rhythm, 75% sloshing on both axes
    along, _ = band_power(mixed[:, 0], 20.0, 7.0)
    across, _ = band_power(mixed[:, 1], 20.0, 7.0)
    assert along > 10 * across
    x_axis = physical(locomotion_fraction=1.0, locomotion_axis="x").shifts.values
    assert np.all(x_axis[:, 0] == 0) and np.abs(x_axis[:, 1]).max() > 1


def test_walk_is_bounded_and_starts_at_rest():
    shifts = physical(seconds=100.0, model="walk", walk_step_um=2.0, max_shift_um=5.0).shifts.values
    assert shifts[0].tolist() == [0.0, 0.0]
    radius = np.hypot(shifts[:, 0], shifts[:, 1])
    assert radius.max() <= 5.0 + 1e-9 and radius.max() > 4.0  # it reaches and respects the wall
    steps = np.diff(shifts, axis=0)
    assert np.std(steps[radius[1:] < 4.0]) == pytest.approx(2.0, rel=0.1)


def test_shift_and_crop_matches_scipy_bilinear():
    rng = np.random.default_rng(0)
    canvas = rng.random((30, 34)).astype(np.float32)
    for dy, dx in [(0.0, 0.0), (1.25, -2.5), (-3.7, 0.3), (3.0, 2.0)]:
        ours = shift_and_crop(canvas, dy, dx, 5, 6, 20, 22)
        ref = ndi_shift(canvas.astype(float), (dy, dx), order=1, mode="constant")[5:25, 6:28]
        np.testing.assert_allclose(ours, ref, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_shift_gives_the_numpy_bytes(dtype, monkeypatch):
    pytest.importorskip("numba")
    rng = np.random.default_rng(1)
    chunk = rng.random((2, 40, 46)).astype(dtype)  # a frame as the chain passes it: a view
    # Inside the canvas, across its edges, whole pixels, beyond it entirely.
    shifts = [(0.3, -1.7), (-5.2, 3.9), (6.5, 6.5), (0.0, 0.0), (-4.0, 4.0), (-80.1, 2.2)]
    compiled = [shift_and_crop(chunk[1], dy, dx, 5, 6, 30, 34) for dy, dx in shifts]
    monkeypatch.setenv("MINISIM_KERNELS", "numpy")
    for (dy, dx), ours in zip(shifts, compiled, strict=True):
        reference = shift_and_crop(chunk[1], dy, dx, 5, 6, 30, 34)
        assert ours.dtype == reference.dtype == dtype
        np.testing.assert_array_equal(ours, reference)


def test_clamp_radius():
    out = clamp_radius(np.array([[3.0, 4.0], [0.3, 0.4]]), 2.5)
    np.testing.assert_allclose(out, [[1.5, 2.0], [0.3, 0.4]])


def test_validation_and_warnings():
    with pytest.raises(ValidationError, match="max_shift_um"):
        BrainMotion(motion_amplitude_um=20.0, max_shift_um=15.0)
    acq = small_acquisition(px=40, duration_s=1.0)
    with pytest.raises(ValidationError, match="trajectory_um has 3 entries"):
        Spec(acquisition=acq, steps=[BrainMotion(trajectory_um=[(0, 0)] * 3)])
    with pytest.warns(SpecWarning, match="motion_amplitude_um"):
        Spec(acquisition=acq, steps=[BrainMotion()])  # 10 µm on a 40 µm field
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Spec(acquisition=small_acquisition(px=200), steps=[BrainMotion()])  # 10 µm is 5%: fine


def test_registration_recovers_the_shifts():
    # A real registration algorithm on a bright, textured movie: dense sharp cells at a
    # steady glow (no bursts), so every frame shows the same texture, moved.
    from skimage.registration import phase_cross_correlation

    acq = small_acquisition(px=96, duration_s=3.0)
    spec = Spec(acquisition=acq, seed=5, steps=[
        PlaceNeurons(density_per_mm3=150000.0, soma_radius_um=3.0),
        CellActivity(p_quiescent_to_active=1e-9, quiescent_rate_hz=0.0), Composite(),
        BrainMotion(motion_amplitude_um=4.0, max_shift_um=6.0)])  # fmt: skip
    rec = simulate(spec).compute()
    movie = rec.observed.values
    truth = rec.ground_truth.shifts.values
    estimates = np.array([
        phase_cross_correlation(movie[0], frame, upsample_factor=20, normalization=None)[0]
        for frame in movie])  # fmt: skip
    # The estimate registers each frame back onto frame 0: it is the negated motion.
    residual = -estimates - truth
    residual -= residual.mean(axis=0)
    assert np.sqrt(np.mean(residual**2)) < 0.5


def test_the_moved_movie_is_a_stage_of_its_own():
    from minisim import IlluminationProfile, Output

    spec = Spec(acquisition=small_acquisition(px=32, duration_s=1.0), seed=4,
                output=Output(save_intermediates=True),
                steps=[PlaceNeurons(), CellActivity(), Composite(),
                       BrainMotion(motion_amplitude_um=1.0, max_shift_um=2.0),
                       IlluminationProfile()])  # fmt: skip
    rec = simulate(spec)
    moved = rec.stage("brain_motion").values
    assert rec.stage("brain_motion").dims == ("frame", "y", "x") and moved.shape == (20, 32, 32)
    lit = rec.stage("illumination_profile").values
    field = rec.dataset["illumination"].values.astype(np.float32)
    assert np.array_equal(lit, moved * field)  # the next stage multiplies exactly this movie
