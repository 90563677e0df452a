"""Rungs 4 and 5: neuropil haze and the scope's static fields."""

from __future__ import annotations

import numpy as np
import pytest

from minisim import (
    BrainMotion,
    CellActivity,
    CellOptics,
    Composite,
    IlluminationProfile,
    Leakage,
    Neuropil,
    PlaceNeurons,
    Spec,
    Vignette,
    simulate,
)
from minisim.steps.fields import radial_falloff
from minisim.steps.neuropil import spatial_components

from .conftest import NothingComputes, small_acquisition


def test_rungs_4_and_5_verbatim(ladder_acq):
    acq = ladder_acq
    with NothingComputes():
        rec = simulate(Spec(acquisition=acq, seed=1, steps=[
            PlaceNeurons(), CellActivity(), CellOptics(), Composite(), Neuropil(),
            IlluminationProfile(), Vignette(), Leakage()]))  # fmt: skip
        gt = rec.ground_truth
    assert gt.neuropil_spatial.shape == (3, 200, 200)
    assert gt.neuropil_temporal.shape == (3, 400)
    assert gt.neuropil_population.shape == (400,)
    assert gt.illumination.shape == gt.vignette.shape == gt.leakage.shape == (200, 200)
    # The fields are coordinates of the movie: they survive slicing.
    clip = rec.observed.isel(frame=slice(10, 12))
    assert np.array_equal(clip.vignette.values, gt.vignette.values)


def test_radial_falloff_centre_corner_monotone():
    field = radial_falloff((51, 61), 1.0, 0.3, 2.0)
    assert field[25, 30] == 1.0
    assert min(field[0, 0], field[0, -1], field[-1, 0], field[-1, -1]) == pytest.approx(0.3)
    row = field[25, 30:]
    assert np.all(np.diff(row) < 0)
    even = radial_falloff((50, 50), 1.0, 0.5, 1.0)
    assert even.max() < 1.0 and even.max() > 0.98  # the centre falls between pixels
    shifted = radial_falloff((51, 61), 2.0, 0.3, 2.0, center_offset_um=(10.0, -20.0))
    assert np.unravel_index(np.argmax(shifted), shifted.shape) == (30, 20)
    # The farthest corner from the moved centre is still exactly at the falloff value.
    assert shifted.min() == pytest.approx(0.3)


def test_leakage_profiles():
    acq = small_acquisition(px=41)
    uniform = Leakage(profile="uniform", level=0.2).field(acq)
    assert np.all(uniform == 0.2)
    gauss = Leakage(level=0.5, sigma_um=5.0).field(acq)
    assert gauss[20, 20] == 0.5
    assert gauss[20, 25] == pytest.approx(0.5 * np.exp(-0.5))
    default = Leakage().field(acq)  # σ = a quarter of the field: 10.25 px
    assert default[20, 30] == pytest.approx(0.1 * np.exp(-(10**2) / (2 * 10.25**2)))


def fields_spec(motion: bool):
    steps = [PlaceNeurons(), CellActivity(), Composite(), IlluminationProfile(falloff=0.5),
             Vignette(falloff=0.6), Leakage(level=0.3)]  # fmt: skip
    if motion:
        steps.append(BrainMotion(motion_amplitude_um=2.0, max_shift_um=3.0))
    return Spec(acquisition=small_acquisition(px=60, duration_s=1.0), seed=2, steps=steps)


def test_fields_are_applied_after_motion_and_never_move():
    rec = simulate(fields_spec(motion=True)).compute()
    gt = rec.ground_truth
    movie = rec.observed.values
    pre = rec.dataset  # the multiplicative product is exactly what shaped every frame
    product = gt.illumination.values * gt.vignette.values
    assert product[0, 0] == pytest.approx(0.3)
    # Where no cell ever shines (no light), every frame equals the leakage exactly.
    still = simulate(fields_spec(motion=True), until="brain_motion").observed.values
    dark = np.all(still == 0, axis=0)
    assert dark.any()
    assert np.all(movie[:, dark] == gt.leakage.values[dark].astype(np.float32))
    # The fields themselves do not depend on the motion.
    plain = simulate(fields_spec(motion=False)).ground_truth
    for name in ("illumination", "vignette", "leakage"):
        assert np.array_equal(pre[name].values, getattr(plain, name).values)


def test_frame_equals_cells_times_fields_plus_leakage():
    rec = simulate(fields_spec(motion=False)).compute()
    cells = simulate(fields_spec(motion=False), until="cells_only").observed.values
    gt = rec.ground_truth
    f32 = np.float32
    expected = cells * gt.illumination.values.astype(f32) * gt.vignette.values.astype(f32)
    expected = expected + gt.leakage.values.astype(f32)
    np.testing.assert_array_equal(rec.observed.values, expected)


def neuropil_rec(coupling, seconds=60.0, **kw):
    spec = Spec(acquisition=small_acquisition(px=80, duration_s=seconds), seed=6, steps=[
        PlaceNeurons(density_per_mm3=60000.0), CellActivity(p_quiescent_to_active=0.02), Composite(),
        Neuropil(population_coupling=coupling, **kw)])  # fmt: skip
    return simulate(spec).compute()


def test_spatial_components_smooth_balanced_nonnegative():
    comps = spatial_components((300, 300), 12.0, 3, seed=1)
    assert comps.min() >= 0  # each in [0, 1] before the rescale that balances the means
    means = comps.mean(axis=(1, 2))
    np.testing.assert_allclose(means, means.mean(), rtol=1e-12)
    # Autocorrelation length: a Gaussian-blurred white field has correlation exp(−d²/4σ²).
    f = comps[0] - comps[0].mean()
    corr = [np.mean(f[:, :-d] * f[:, d:]) / f.var() for d in (6, 12, 24)]
    expected = [np.exp(-(d**2) / (4 * 12.0**2)) for d in (6, 12, 24)]
    np.testing.assert_allclose(corr, expected, atol=0.12)


def test_population_coupling():
    coupled = neuropil_rec(1.0).ground_truth
    pop = coupled.neuropil_population.values
    assert pop.mean() == pytest.approx(1.0, rel=1e-9)
    for k in range(3):
        assert np.corrcoef(coupled.neuropil_temporal.values[k], pop)[0, 1] > 0.95
    free = neuropil_rec(0.0).ground_truth
    r = [abs(np.corrcoef(free.neuropil_temporal.values[k], pop)[0, 1]) for k in range(3)]
    assert max(r) < 0.6
    assert np.all(free.neuropil_temporal.values > 0)


def test_population_driver_lags_the_calcium():
    gt = neuropil_rec(1.0, population_tau_s=1.5).ground_truth
    summed = gt.C.values.sum(axis=0)
    pop = gt.neuropil_population.values
    lags = np.arange(0, 60)
    xc = [np.corrcoef(summed[: len(summed) - lag], pop[lag:])[0, 1] for lag in lags]
    assert np.argmax(xc) > 0  # the driver trails the population's calcium
    assert np.std(np.diff(pop)) < np.std(np.diff(summed / summed.mean()))  # and is smoother


def test_neuropil_adds_the_low_rank_haze():
    rec = neuropil_rec(0.7, seconds=2.0)
    cells = simulate(rec.spec, until="cells_only").observed.values
    gt = rec.ground_truth
    S, T = gt.neuropil_spatial.values.astype(np.float32), gt.neuropil_temporal.values
    haze = np.einsum("kt,kyx->tyx", T.astype(np.float64), S.astype(np.float64)) * (0.5 / 3)
    np.testing.assert_allclose(rec.observed.values - cells, haze, rtol=1e-4, atol=1e-5)


def test_drift_statistics():
    gt = neuropil_rec(0.0, seconds=600.0, temporal_tau_s=5.0, n_components=1).ground_truth
    log_env = np.log(gt.neuropil_temporal.values[0].astype(float))
    ou = (log_env + 0.08) / 0.4
    assert abs(ou.mean()) < 0.3 and ou.std() == pytest.approx(1.0, abs=0.2)
    lag1 = np.corrcoef(ou[:-1], ou[1:])[0, 1]
    assert lag1 == pytest.approx(np.exp(-1 / (5.0 * 20.0)), abs=0.01)
