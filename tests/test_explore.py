"""minisim.explore: the public helpers behind the notebooks and the studio.

Each helper computes one effect alone; the tests check it against closed forms or against
the same quantity taken from a full simulated recording (bit for bit where it must be).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from dask.callbacks import Callback
from scipy.integrate import solve_ivp

from minisim import (
    Bleaching,
    BrainMotion,
    CellActivity,
    CellOptics,
    Composite,
    IlluminationProfile,
    Leakage,
    Neuropil,
    PlaceNeurons,
    Sensor,
    Spec,
    SpecWarning,
    Vasculature,
    VesselLayer,
    Vignette,
    simulate,
)
from minisim.explore import (
    FramePreview,
    activity_at_level,
    activity_preset,
    bleaching_curves,
    blur_vs_depth,
    digitize_frame,
    estimate_size,
    field_profiles,
    kernel_curve,
    kernel_timing,
    motion_trajectory,
    snr_vs_radius,
    spec_to_python,
    taus_from_timing,
    vessel_mask,
    window_spec,
)
from minisim.presets import build_spec, ca1, cortex_l23, generic_1p, miniscope_v4

from .conftest import small_acquisition

ACQ = small_acquisition(px=48, duration_s=3.0)
FULL = [PlaceNeurons(), CellActivity(), Bleaching(), CellOptics(), Composite(), Neuropil(),
        BrainMotion(motion_amplitude_um=2.0, max_shift_um=3.0), IlluminationProfile(),
        Vignette(), Leakage(), Sensor()]  # fmt: skip


class CountTasks(Callback):
    def __init__(self):
        super().__init__()
        self.n = 0

    def _posttask(self, key, result, dsk, state, id):
        self.n += 1


# --------------------------------------------------------------------------- activity
def test_activity_level_half_is_the_default_and_levels_are_monotone():
    default = CellActivity()
    preset = activity_preset(0.5)
    for name, value in preset.items():
        assert value == pytest.approx(getattr(default, name))
    levels = [activity_preset(a) for a in np.linspace(0, 1, 11)]
    assert all(
        a["p_quiescent_to_active"] < b["p_quiescent_to_active"]
        for a, b in zip(levels, levels[1:], strict=False)
    )
    assert all(
        a["p_active_to_quiescent"] > b["p_active_to_quiescent"]
        for a, b in zip(levels, levels[1:], strict=False)
    )
    assert activity_preset(7.0) == activity_preset(1.0)
    assert activity_preset(-1.0) == activity_preset(0.0)
    assert activity_at_level(0.0, tau_decay_s=1.0).active_rate_hz == 90.0


@pytest.mark.parametrize("taus", [(0.05, 0.5), (0.01, 1.2), (0.2, 0.4)])
def test_taus_from_timing_inverts_kernel_timing(taus):
    t_peak, fwhm = kernel_timing(*taus)
    assert taus_from_timing(t_peak, fwhm) == pytest.approx(taus, rel=1e-6)


def test_kernel_timing_matches_a_finely_sampled_kernel():
    t, k = kernel_curve(0.05, 0.5, fps=20000.0)
    above = t[k >= 0.5]
    t_peak, fwhm = kernel_timing(0.05, 0.5)
    assert t[np.argmax(k)] == pytest.approx(t_peak, abs=1e-4)
    assert above[-1] - above[0] == pytest.approx(fwhm, abs=2e-4)
    assert k.max() == pytest.approx(1.0, abs=1e-6)


def test_unreachable_timing_clamps_to_the_nearest_kernel():
    rise, decay = taus_from_timing(1.0, 1.0)  # peak/width 1 > the ~0.41 any kernel reaches
    assert rise < decay and rise / decay > 0.999
    with pytest.raises(ValueError, match="t_peak_s"):
        taus_from_timing(0.0, 1.0)


# --------------------------------------------------------------------------- optics
def test_blur_components_add_in_quadrature_with_a_defocus_v():
    z = np.linspace(0, 200, 41)
    blur = blur_vs_depth(ACQ, z, focal_um=80.0)
    quadrature = np.sqrt(
        blur["diffraction_um"] ** 2 + blur["scatter_um"] ** 2 + blur["defocus_um"] ** 2
    )
    np.testing.assert_allclose(blur["total_um"], quadrature, rtol=1e-12)
    np.testing.assert_allclose(blur["defocus_um"], ACQ.optics.na * np.abs(z - 80.0))
    assert blur["defocus_um"][np.argmin(np.abs(z - 80))] == 0
    # Brightness falls away from the focal plane on both sides.
    at = np.argmin(np.abs(z - 80))
    assert (
        blur["brightness"][at] > blur["brightness"][at - 4]
        and blur["brightness"][at] > blur["brightness"][at + 4]
    )


# --------------------------------------------------------------------------- bleaching
def test_bleaching_curves_solve_the_pool_equation():
    bleaching = Bleaching(bleach_susceptibility=2e-4, turnover_tau_s=3000.0)
    e = 5.0
    curves = bleaching_curves(bleaching, emission=e, session_s=3600.0, gap_s=20000.0)
    q, tau = bleaching.bleach_susceptibility, bleaching.turnover_tau_s

    def pool(t, b):
        return (1 - b) / tau - q * e * b

    ode = solve_ivp(pool, (0, 3600.0), [1.0], t_eval=curves["t_session_s"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(curves["fade"], ode.y[0], rtol=1e-7)
    assert curves["floor"] == pytest.approx((1 / tau) / (1 / tau + q * e))
    assert curves["recovery"][0] == pytest.approx(curves["fade"][-1])
    dark = solve_ivp(lambda t, b: (1 - b) / tau, (0, 20000.0), [curves["fade"][-1]],
                     t_eval=curves["t_gap_s"], rtol=1e-10, atol=1e-12)  # fmt: skip
    np.testing.assert_allclose(curves["recovery"], dark.y[0], rtol=1e-7)


# --------------------------------------------------------------------------- one effect alone
def test_motion_trajectory_is_the_recordings_shifts():
    motion = BrainMotion(motion_amplitude_um=2.0, max_shift_um=3.0)
    spec = Spec(acquisition=ACQ, seed=4, steps=FULL)
    alone = motion_trajectory(motion, ACQ, seed=4)
    np.testing.assert_array_equal(alone.values, simulate(spec).ground_truth.shifts.values)
    assert np.percentile(np.hypot(*alone.values.T), 99) == pytest.approx(2.0, rel=1e-6)


def test_vessel_mask_is_the_recordings_mask():
    vessels = Vasculature(enabled=True, layers=[VesselLayer(depth_um=40.0, root_radius_um=6.0)])
    acq = ACQ.model_copy(update={"focal_depth_in_tissue_um": 60.0})
    spec = Spec(acquisition=acq, seed=2, steps=[PlaceNeurons(), CellActivity(), CellOptics(),
                                               Composite(), vessels])  # fmt: skip
    alone = vessel_mask(vessels, ACQ, seed=2, focal_depth_um=60.0)
    np.testing.assert_array_equal(alone.values, simulate(spec).dataset["vasculature_mask"].values)
    assert alone.values.min() < 0.9 and alone.values.max() <= 1.0


def test_digitize_frame_repeats_the_sensor_draws_of_that_frame():
    spec = Spec(acquisition=ACQ, seed=5, steps=FULL)
    scene = simulate(spec, until="leakage").observed
    rec = simulate(spec)
    t = 17
    np.testing.assert_array_equal(digitize_frame(scene[t].values, spec, t), rec.observed[t].values)
    # Without draws: the floor of the mean, which the mean count (over the noise, the
    # floor taking half a count) stays within half a count of, away from the ADC's ends.
    noise_free = digitize_frame(scene[t].values, spec, t, noise=False).astype(float)
    mean = simulate(spec, until="leakage").expected_counts()[t].values
    inside = (noise_free >= 10) & (noise_free <= 245)
    assert inside.any()
    assert np.all(np.abs(mean[inside] - noise_free[inside]) <= 0.5 + 1e-3)
    with pytest.raises(ValueError, match="no sensor"):
        digitize_frame(scene[t].values, Spec(acquisition=ACQ, steps=FULL[:5]), t)


def test_field_profiles_and_snr_vs_radius():
    spec = Spec(acquisition=ACQ, seed=1, steps=FULL)
    fields = field_profiles(spec)
    assert set(fields) == {"illumination_profile", "vignette", "leakage"}
    ill = fields["illumination_profile"]
    assert ill.max() == pytest.approx(1.0, abs=0.01) and ill.min() == pytest.approx(0.7, abs=1e-9)
    snr = snr_vs_radius(spec, transient=1.0, baseline=1.0)
    # On the axis: illumination 1 (the centre of an even grid is between pixels: ≈ 1).
    g = 100.0 * 0.7 * ACQ.optics.na**2
    assert snr["snr"][0] == pytest.approx(g / math.sqrt(g + 4.0), rel=0.01)
    assert np.all(np.diff(snr["snr"]) <= 1e-12)


# --------------------------------------------------------------------------- frame preview
def test_frame_preview_gives_the_recordings_frames_and_reuses_shared_work():
    spec = Spec(acquisition=ACQ, seed=6, steps=FULL)
    preview = FramePreview(spec)
    first, again = CountTasks(), CountTasks()
    with first:
        frame = preview.frame(31)
    with again:
        other = preview.frame(44)
    rec = simulate(spec, chunks=7)
    np.testing.assert_array_equal(frame, rec.observed[31].values)
    np.testing.assert_array_equal(other, rec.observed[44].values)
    # The second frame runs only its own pixel work: the traces, trajectory and focal
    # plane come from the first computation.
    assert again.n < first.n / 3
    dy, dx = preview.shift(44)
    assert (dy, dx) == tuple(rec.ground_truth.shifts.values[44])
    cells = preview.cells()
    np.testing.assert_array_equal(cells["detectable"], rec.ground_truth.detectable.values)
    mp = preview.max_projection(10, span=6)
    np.testing.assert_array_equal(mp, rec.observed[7:13].max("frame").values)
    with pytest.raises(IndexError, match="outside"):
        preview.frame(ACQ.n_frames)


def test_window_spec_keeps_the_pixel_size_and_crops_the_sensor():
    spec = build_spec(miniscope_v4(), ca1(), duration_s=1.0)
    small = window_spec(spec, 128)
    assert small.acquisition.fov_shape == (128, 128)
    assert small.acquisition.pixel_size_um == spec.acquisition.pixel_size_um
    assert small.steps == spec.steps
    assert window_spec(spec, None) is spec


# --------------------------------------------------------------------------- code and size
@pytest.mark.parametrize(
    "spec",
    [
        Spec(acquisition=ACQ, seed=3, steps=FULL),
        build_spec(miniscope_v4(), cortex_l23(), duration_s=10.0, extra_steps=[BrainMotion()]),
        build_spec(generic_1p(), ca1(), seed=9, include_neuropil=False),
    ],
    ids=["ladder", "v4-cortex", "generic"],
)
def test_spec_to_python_rebuilds_the_spec(spec):
    code = spec_to_python(spec)
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpecWarning)
        exec(code.replace("rec = simulate(spec)", ""), namespace)
    assert namespace["spec"] == spec
    assert namespace["spec"].cache_key() == spec.cache_key()


def test_estimate_size():
    spec = Spec(acquisition=ACQ, seed=3, steps=FULL)
    size = estimate_size(spec)
    assert size["movie_bytes"] == ACQ.n_frames * 48 * 48 * 1
    assert size["movie_bytes"] == simulate(spec).observed.nbytes
    no_sensor = Spec(acquisition=ACQ, steps=FULL[:5])
    assert estimate_size(no_sensor)["movie_bytes"] == simulate(no_sensor).observed.nbytes
