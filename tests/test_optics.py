"""Rung 2: blur, dimming, focal plane, and the multi-resolution footprint error bound."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from minisim import (
    CellActivity,
    CellOptics,
    Composite,
    NeuronPopulation,
    Optics,
    PlaceNeurons,
    Spec,
    simulate,
)
from minisim.engine import Footprints
from minisim.engine.multiscale import MultiScaleFootprints
from minisim.steps.detection import DETECT_SNR_THRESHOLD, detection_snr
from minisim.steps.optics import (
    blurred_patch,
    node_factor,
    observed_footprints,
    resolve_focal_plane,
    yield_maximizing_focal_plane,
)

from .conftest import small_acquisition

# Several cases pin the focal plane away from a lone cell on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:focal_depth_in_tissue_um:minisim.SpecWarning")


def one_cell_spec(z, y=0.0, x=0.0, px=64, radius=4.0, irregularity=0.0, **acq):
    pop = NeuronPopulation(
        positions_um=[(z, y, x)], soma_radius_um=radius, irregularity=irregularity
    )
    return Spec(
        acquisition=small_acquisition(px=px, duration_s=0.5, **acq),
        seed=0,
        steps=[PlaceNeurons(populations=[pop]), CellActivity(), CellOptics(), Composite()],
    )


def test_rung2_verbatim(ladder_acq, no_compute):
    acq = ladder_acq
    rec = simulate(
        Spec(
            acquisition=acq,
            seed=1,
            steps=[PlaceNeurons(), CellActivity(), CellOptics(), Composite()],
        )
    )
    gt = rec.ground_truth
    n = gt.n_units
    assert isinstance(gt.focal_depth_um, float)
    assert gt.A_planted.shape == gt.A_observed.shape == (n, 200, 200)
    assert gt.observed_sigma_px.shape == gt.depth_um.shape == gt.in_focus.shape == (n,)
    assert gt.in_focus.dtype == bool
    assert rec.dataset.attrs["focal_depth_um"] == gt.focal_depth_um


def test_per_cell_optics_closed_forms():
    spec = one_cell_spec(40.0, focal_depth_in_tissue_um=25.0)
    rec = simulate(spec)
    acq = spec.acquisition
    o, t = acq.optics, acq.tissue
    sigma_um = np.sqrt(
        o.diffraction_sigma_um**2 + (t.scatter_blur_per_um * 40) ** 2 + (o.na * 15) ** 2
    )
    gt = rec.ground_truth
    assert float(gt.observed_sigma_px[0]) == pytest.approx(sigma_um / acq.pixel_size_um)
    gain = np.exp(-40 / t.effective_mfp_um) * o.na**2
    assert float(gt.observed_gain[0]) == pytest.approx(gain)
    # The footprint's integral is the planted one scaled by attenuation·NA² (none lost here).
    total = float(gt.A_observed.sum())
    assert total == pytest.approx(gain * float(gt.A_planted.sum()), rel=1e-5)
    assert float(gt.A_observed.max()) < gain  # blur spreads the light, the peak drops


def test_defocus_is_symmetric_and_zero_at_focus():
    sig = {}
    for z in (30.0, 50.0, 70.0):
        gt = simulate(one_cell_spec(z, focal_depth_in_tissue_um=50.0)).ground_truth
        sig[z] = float(gt.observed_sigma_px[0])
    acq = small_acquisition()
    in_focus = (
        np.hypot(acq.optics.diffraction_sigma_um, acq.tissue.scatter_sigma_um(50.0))
        / acq.pixel_size_um
    )
    assert sig[50.0] == pytest.approx(in_focus)
    # Same |Δz| above and below: defocus matches, only scatter (depth) differs.
    d30 = np.sqrt(
        sig[30.0] ** 2
        - (acq.tissue.scatter_sigma_um(30.0) ** 2 + acq.optics.diffraction_sigma_um**2)
    )
    d70 = np.sqrt(
        sig[70.0] ** 2
        - (acq.tissue.scatter_sigma_um(70.0) ** 2 + acq.optics.diffraction_sigma_um**2)
    )
    assert d30 == pytest.approx(d70) == pytest.approx(0.45 * 20.0)


def test_sigma_squared_times_peak_is_focus_invariant():
    # A point-like cell (one lit pixel) blurred wide: peak ≈ gain/(2πσ²), so σ²·peak is
    # the same at any focal plane (defocus only spreads the light).
    products = []
    for focal in (0.0, 20.0, 40.0):
        gt = simulate(
            one_cell_spec(60.0, px=200, radius=0.2, focal_depth_in_tissue_um=focal)
        ).ground_truth
        sigma = float(gt.observed_sigma_px[0])
        assert sigma > 4
        products.append(sigma**2 * float(gt.A_observed.max()))
    np.testing.assert_allclose(products, products[0], rtol=0.03)
    assert products[0] == pytest.approx(float(gt.observed_gain[0]) / (2 * np.pi), rel=0.03)


def test_deeper_cells_are_dimmer_and_broader():
    spec = Spec(
        acquisition=small_acquisition(px=64, duration_s=0.5, focal_depth_in_tissue_um=0.0),
        steps=[
            PlaceNeurons(populations=[NeuronPopulation(positions_um=[(z, 0.0, 0.0) for z in (10, 40, 80)],
                                                       irregularity=0.0)]),
            CellActivity(), CellOptics(), Composite(),
        ],
    )  # fmt: skip
    gt = simulate(spec).ground_truth
    assert np.all(np.diff(gt.observed_sigma_px.values) > 0)
    assert np.all(np.diff(gt.A_observed.max(("y", "x")).values) < 0)


def test_light_blurred_past_the_tissue_is_lost():
    spec = one_cell_spec(50.0, y=30.0, x=30.0, focal_depth_in_tissue_um=0.0)  # near a corner
    gt = simulate(spec).ground_truth
    assert float(gt.A_observed.sum()) < 0.9 * float(gt.observed_gain[0]) * float(gt.A_planted.sum())


def test_in_focus_rule_is_inclusive():
    depths = [70.0, 80.0, 95.0, 96.0]
    pop = NeuronPopulation(positions_um=[(z, 0.0, 0.0) for z in depths], soma_radius_um=3.0)
    acq = small_acquisition(focal_depth_in_tissue_um=80.0).model_copy(
        update={"optics": Optics(magnification=8.0, depth_of_field_um=15.0)}
    )
    spec = Spec(acquisition=acq, steps=[PlaceNeurons(populations=[pop]), CellOptics()])
    assert simulate(spec).ground_truth.in_focus.values.tolist() == [True, True, True, False]


def test_field_curvature_focuses_off_axis_cells_shallower():
    optics = Optics(magnification=8.0, field_curvature_radius_um=200.0, depth_of_field_um=2.0)
    acq = small_acquisition(px=100, focal_depth_in_tissue_um=50.0).model_copy(
        update={"optics": optics}
    )
    shift = 200.0 - np.sqrt(200.0**2 - 40.0**2)  # ≈ r²/2R = 4 µm at r = 40 µm
    assert shift == pytest.approx(40.0**2 / 400.0, rel=0.05)
    pop = NeuronPopulation(positions_um=[(50.0, 0.0, 0.0), (50.0 - shift, 40.0, 0.0), (50.0, 40.0, 0.0)],
                           soma_radius_um=3.0)  # fmt: skip
    gt = simulate(
        Spec(acquisition=acq, steps=[PlaceNeurons(populations=[pop]), CellOptics()])
    ).ground_truth
    assert gt.in_focus.values.tolist() == [True, True, False]
    sigma = gt.observed_sigma_px.values
    assert sigma[2] > sigma[1]


def test_auto_focus_median_rule():
    assert resolve_focal_plane("auto", np.array([10.0, 30.0, 100.0])) == 30.0
    assert resolve_focal_plane("auto", np.array([10.0, 30.0, 50.0, 100.0])) == 40.0
    assert resolve_focal_plane("auto", np.array([])) == 0.0
    assert resolve_focal_plane(12.5, np.array([10.0])) == 12.5
    pop = NeuronPopulation(
        positions_um=[(z, 0.0, 0.0) for z in (20.0, 35.0, 90.0)], soma_radius_um=3.0
    )
    gt = simulate(
        Spec(acquisition=small_acquisition(), steps=[PlaceNeurons(populations=[pop]), CellOptics()])
    ).ground_truth
    assert gt.focal_depth_um == 35.0


def test_yield_maximizing_plane_beats_the_median():
    # Five dim cells deep (median plane) can never be detected; a cluster of three bright
    # shallow cells can, if the focus sits on them.
    acq = small_acquisition(px=200)
    centers = np.array(
        [[z, 0.0, 0.0] for z in (20.0, 21.0, 22.0, 150.0, 151.0, 152.0, 153.0, 154.0)]
    )
    peak = np.array([40.0] * 3 + [0.5] * 5)
    base = np.ones(8)
    radius = np.full(8, 5.0)
    focal = yield_maximizing_focal_plane(acq, centers, radius, peak, base, photons_per_unit=100.0)
    assert 19.0 <= focal <= 23.0
    median = resolve_focal_plane("auto", centers[:, 0])
    assert median == 150.5

    def n_detectable(f):
        s0 = acq.optics.diffraction_sigma_um**2 + acq.tissue.scatter_sigma_um(centers[:, 0]) ** 2
        disk_peak = 1 - np.exp(-(5.0**2) / (2 * (s0 + (acq.optics.na * (centers[:, 0] - f)) ** 2)))
        g = acq.tissue.attenuation(centers[:, 0]) * 0.45**2 * 100 * 0.7 * disk_peak
        return int((detection_snr(peak, base, g, 2.0) >= DETECT_SNR_THRESHOLD).sum())

    assert n_detectable(focal) > n_detectable(median)
    single = yield_maximizing_focal_plane(
        acq, np.array([[42.0, 0, 0]] * 4), np.full(4, 5.0), np.ones(4), np.ones(4), 100.0
    )
    assert single == 42.0


def test_detection_snr_formula():
    assert detection_snr(10.0, 4.0, 2.0, 3.0) == pytest.approx(20.0 / np.sqrt(8.0 + 9.0))
    assert detection_snr(1.0, 0.0, 1.0, 0.0) == np.inf
    assert detection_snr(0.0, 0.0, 1.0, 0.0) == 0.0
    assert detection_snr(1.0, -5.0, 1.0, 2.0) == pytest.approx(0.5)


@pytest.mark.parametrize("sigma", [3.0, 8.0, 11.0, 30.0, 75.0, 150.0])
def test_multiscale_footprint_error_bound(sigma):
    # Exact reference: the planted disk convolved at full resolution (zero outside).
    canvas = (400, 420)
    yy, xx = np.mgrid[-7:8, -7:8]
    disk = (np.hypot(yy, xx) <= 7).astype(np.float32)
    planted = Footprints.from_patches([((190, 200), disk)], canvas)
    full = np.zeros(canvas)
    full[190:205, 200:215] = disk
    exact = 0.3 * gaussian_filter(full, sigma, mode="constant", truncate=4.0)
    ms = observed_footprints(planted, np.array([sigma]), np.array([0.3]))
    rendered = ms.to_dense(0, 1, (0, 0, *canvas))[0]
    assert ms.levels[0].factor == node_factor(sigma)
    error = np.abs(rendered - exact).max() / exact.max()
    assert error < 0.01, error  # the documented bound: < 1% of the cell's own peak
    assert rendered.sum() == pytest.approx(exact.sum(), rel=5e-3)
    # Rendering into a movie uses the same representation as the ground truth.
    movie = ms.render(np.array([[2.0, 0.5]]), np.float32)
    np.testing.assert_allclose(movie[1], 0.5 * rendered, rtol=1e-5, atol=1e-7)


def test_blur_matches_scipy_at_full_resolution():
    rng = np.random.default_rng(1)
    patch = (rng.random((9, 11)) > 0.4).astype(np.float32)
    canvas = (60, 70)
    (r, c), values = blurred_patch((20, 30), patch, 2.5, 1.0, canvas)
    full = np.zeros(canvas)
    full[20:29, 30:41] = patch
    exact = gaussian_filter(full, 2.5, mode="constant", truncate=4.0)
    dense = np.zeros(canvas)
    dense[r : r + values.shape[0], c : c + values.shape[1]] = values
    np.testing.assert_allclose(dense, exact, atol=1e-6)


def test_movie_uses_observed_footprints():
    spec = Spec(acquisition=small_acquisition(px=48, duration_s=1.0), seed=3,
                steps=[PlaceNeurons(), CellActivity(), CellOptics(), Composite()])  # fmt: skip
    rec = simulate(spec, chunks=7).compute()
    gt = rec.ground_truth
    eager = np.einsum(
        "it,iyx->tyx", gt.C.values.astype(np.float64), gt.A_observed.values.astype(np.float64)
    )
    np.testing.assert_allclose(rec.observed.values, eager, rtol=1e-5, atol=1e-5 * eager.max())
    assert not np.allclose(gt.A_observed.values, gt.A_planted.values)


def test_full_resolution_wrapper_renders_planted():
    fp = Footprints.from_patches([((1, 2), np.ones((2, 2)))], (5, 6))
    ms = MultiScaleFootprints.full_resolution(fp)
    out = ms.render(np.array([[3.0]]), np.float32)
    assert out[0, 1:3, 2:4].tolist() == [[3.0, 3.0], [3.0, 3.0]] and out.sum() == 12.0
