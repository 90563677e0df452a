"""The sensor: counts, Poisson statistics, clipping, keyed per-frame noise, detectability."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from minisim import (
    DETECT_SNR_THRESHOLD,
    Acquisition,
    CellActivity,
    CellOptics,
    Composite,
    ImageSensor,
    NeuronPopulation,
    Optics,
    PlaceNeurons,
    Sensor,
    Spec,
    simulate,
)
from minisim.steps.sensor import Readout, count_dtype, digitize_frames

from .conftest import NothingComputes, small_acquisition


def readout(**kw) -> Readout:
    base = dict(seed=0, photons_per_unit=1.0, quantum_efficiency=1.0, read_noise_e=0.0,
                gain_adu_per_e=1.0, max_count=255, dtype="|u1", shot_noise="poisson")  # fmt: skip
    return Readout(**{**base, **kw})


def flat(value, frames=40, size=64):
    return np.full((frames, size, size), value, np.float32)


def test_poisson_mean_and_variance_on_a_flat_field():
    # λ = 50 e⁻ with QE 0.5, read noise 3 e⁻, gain 1: counts = floor(P + 3·N).
    out = digitize_frames(0, 40, flat(100.0), readout(quantum_efficiency=0.5, read_noise_e=3.0))
    counts = out.astype(float)
    n = counts.size
    lam, read = 50.0, 3.0
    var = lam + read**2 + 1 / 12  # shot + read + quantization
    # Mean: floor removes 0.5 on average; 5 standard errors tolerance.
    assert abs(counts.mean() - (lam - 0.5)) < 5 * np.sqrt(var / n)
    # Variance: standard error of a variance ≈ var·sqrt(2/n) for a near-normal law.
    assert abs(counts.var() - var) < 5 * var * np.sqrt(2 / n)


def test_poisson_is_poisson_in_the_dark():
    # At λ = 0.5 and no read noise, P(0) = e^-0.5; the Gaussian approximation cannot do that.
    counts = digitize_frames(0, 40, flat(0.5), readout())
    n = counts.size
    p0 = np.exp(-0.5)
    assert abs((counts == 0).mean() - p0) < 5 * np.sqrt(p0 * (1 - p0) / n)
    assert set(np.unique(counts)) <= set(range(12))
    gauss = digitize_frames(0, 40, flat(0.5), readout(shot_noise="gaussian"))
    assert abs((gauss == 0).mean() - p0) > 0.05


def test_gaussian_option_matches_mean_and_variance():
    counts = digitize_frames(
        0, 40, flat(80.0), readout(shot_noise="gaussian", read_noise_e=2.0)
    ).astype(float)
    var = 80.0 + 4.0 + 1 / 12
    assert abs(counts.mean() - 79.5) < 5 * np.sqrt(var / counts.size)
    assert abs(counts.var() - var) < 5 * var * np.sqrt(2 / counts.size)


def test_gain_scales_counts_and_saturation_clips():
    # Read noise makes the electrons continuous, so each floor removes 0.5 on average.
    low = digitize_frames(
        0, 10, flat(40.0, 10), readout(gain_adu_per_e=1.0, read_noise_e=2.0)
    ).astype(float)
    high = digitize_frames(
        0, 10, flat(40.0, 10), readout(gain_adu_per_e=2.0, read_noise_e=2.0)
    ).astype(float)
    assert high.mean() == pytest.approx(2 * low.mean() + 0.5, rel=0.01)
    sat = digitize_frames(0, 5, flat(1e6, 5), readout())
    assert sat.dtype == np.uint8 and np.all(sat == 255)
    dark = digitize_frames(0, 5, flat(-10.0, 5), readout(read_noise_e=0.0))
    assert np.all(dark == 0)


def test_twelve_bits_is_uint16():
    assert count_dtype(8) == np.uint8 and count_dtype(12) == np.uint16
    out = digitize_frames(0, 3, flat(1e6, 3, 8), readout(max_count=4095, dtype="<u2"))
    assert out.dtype == np.uint16 and out.max() == 4095


def test_noise_is_keyed_by_frame():
    r = readout(read_noise_e=2.0)
    movie = flat(20.0, frames=10, size=16)
    whole = digitize_frames(0, 10, movie, r)
    tail = digitize_frames(5, 10, movie[5:], r)
    assert np.array_equal(whole[5:], tail)
    assert not np.array_equal(whole[0], whole[1])


def test_noise_free_readout_is_the_floored_expectation():
    out = digitize_frames(0, 2, flat(10.3, 2, 4), readout(quantum_efficiency=0.7, noise=False))
    assert np.all(out == np.floor(10.3 * 0.7))


def test_hardware_fields_belong_to_the_image_sensor():
    with pytest.raises(ValidationError, match="ImageSensor"):
        Sensor(read_noise_e=1.0)
    with pytest.raises(ValidationError, match="photons_per_unit"):
        Sensor(photons_per_unit=0.0)


def test_darkness_reads_out_as_noise():
    spec = Spec(
        acquisition=small_acquisition(px=32, duration_s=1.0), steps=[PlaceNeurons(), Sensor()]
    )
    obs = simulate(spec).observed.values
    assert obs.dtype == np.uint8 and obs.shape == (20, 32, 32)
    assert 0 < obs.mean() < 2  # floor(2 e⁻ read noise), clipped at 0


def sensor_spec(positions, ppu=100.0, focal=50.0, px=64, seconds=4.0):
    pop = NeuronPopulation(positions_um=positions, soma_radius_um=4.0, irregularity=0.0)
    acq = small_acquisition(px=px, duration_s=seconds, focal_depth_in_tissue_um=focal)
    steps = [PlaceNeurons(populations=[pop]), CellActivity(brightness_cv=0.0, p_quiescent_to_active=0.05),
             CellOptics(), Composite(), Sensor(photons_per_unit=ppu)]  # fmt: skip
    return Spec(acquisition=acq, seed=2, steps=steps)


@pytest.mark.filterwarnings("ignore::minisim.SpecWarning")
def test_detectability_bright_and_dim_in_and_out_of_focus():
    positions = [(50.0, -15.0, -15.0), (70.0, 15.0, 15.0)]  # in focus, 20 µm out of focus
    bright = simulate(sensor_spec(positions, ppu=200.0)).ground_truth
    dim = simulate(sensor_spec(positions, ppu=0.002)).ground_truth
    assert bright.in_focus.values.tolist() == [True, False]
    assert bright.detectable.values.tolist() == [
        True,
        True,
    ]  # blur alone does not hide a bright cell
    assert dim.detectable.values.tolist() == [False, False]


def test_detectable_fraction_falls_with_depth():
    acq = small_acquisition(px=120, duration_s=4.0, focal_depth_in_tissue_um=0.0)
    pops = [NeuronPopulation(density_per_mm3=60000.0, depth_range_um=(lo, lo + 30.0), soma_radius_um=4.0)
            for lo in (0.0, 60.0, 120.0)]  # fmt: skip
    spec = Spec(acquisition=acq, seed=4, steps=[PlaceNeurons(populations=pops), CellActivity(p_quiescent_to_active=0.05),
                                                CellOptics(), Composite(), Sensor(photons_per_unit=300.0)])  # fmt: skip
    gt = simulate(spec).ground_truth
    population = gt.population.values
    detectable = gt.detectable.values
    fractions = [detectable[population == k].mean() for k in range(3)]
    assert fractions[0] > 0.8 and fractions[2] < 0.2
    assert fractions[0] > fractions[1] > fractions[2]


def test_auto_focus_with_a_sensor_is_lazy_and_recorded():
    acq = small_acquisition(px=64, duration_s=2.0)
    spec = Spec(
        acquisition=acq,
        seed=3,
        steps=[PlaceNeurons(), CellActivity(), CellOptics(), Composite(), Sensor()],
    )
    with NothingComputes():
        rec = simulate(spec)
    assert "focal_depth_um" not in rec.dataset.attrs  # not known until the traces are
    focal = rec.ground_truth.focal_depth_um
    depths = rec.ground_truth.depth_um.values
    assert depths.min() <= focal <= depths.max()
    computed = rec.compute()
    assert computed.dataset.attrs["focal_depth_um"] == focal
    # A population at one depth resolves exactly to it.
    pop = NeuronPopulation(
        positions_um=[(42.0, y, 0.0) for y in (-20.0, 0.0, 20.0)], soma_radius_um=4.0
    )
    one = spec.model_copy(update={"steps": (PlaceNeurons(populations=[pop]), *spec.steps[1:])})
    assert simulate(one).ground_truth.focal_depth_um == 42.0


def test_detection_threshold_is_three():
    assert DETECT_SNR_THRESHOLD == 3.0


def test_rung6_sensor_defaults():
    acq = Acquisition(fps=20.0, duration_s=2.0, optics=Optics(magnification=8.0),
                      image_sensor=ImageSensor(n_px_height=64, n_px_width=64, pixel_pitch_um=8.0))  # fmt: skip
    rec = simulate(
        Spec(
            acquisition=acq,
            seed=1,
            steps=[PlaceNeurons(), CellActivity(), CellOptics(), Composite(), Sensor()],
        )
    )
    obs = rec.observed.values
    assert obs.dtype == np.uint8 and obs.max() > 0
    assert rec.ground_truth.detectable.dtype == bool


def test_expected_counts_are_the_mean_of_the_noisy_counts():
    spec = Spec(acquisition=small_acquisition(px=32, duration_s=1.0), seed=1,
                steps=[PlaceNeurons(), CellActivity(), Composite(), Sensor(photons_per_unit=30.0)])  # fmt: skip
    clean = simulate(spec, until="composite")
    expected = clean.expected_counts().values
    assert expected.dtype == np.float32
    # Far from the ADC's ends the floor takes half a count off the mean electrons.
    intensity = clean.observed.values.astype(np.float64)
    mean_e = intensity * 30.0 * 0.7
    inside = (mean_e > 10) & (mean_e < 240)
    assert inside.any()
    assert np.allclose(expected[inside], mean_e[inside] - 0.5, atol=1e-3)
    noisy = simulate(spec).observed.values.astype(float)
    residual = noisy - expected  # the noise: mean zero over the movie
    assert abs(residual.mean()) < 5 * residual.std() / np.sqrt(residual.size)
    with pytest.raises(ValueError, match="already holds sensor counts"):
        simulate(spec).expected_counts()


def test_detectable_subset_keeps_only_detectable_cells():
    spec = sensor_spec([(50.0, -15.0, -15.0), (50.0, 15.0, 15.0)], ppu=200.0)
    gt = simulate(spec).ground_truth
    sub = gt.detectable_subset()
    keep = gt.detectable.values
    assert sub.n_units == keep.sum()
    assert np.array_equal(sub.C.values, gt.C.values[keep])
    assert np.array_equal(sub.A_observed.values, gt.A_observed.values[keep])
    assert sub.focal_depth_um == gt.focal_depth_um


@pytest.mark.slow
def test_ladder_exposure_uses_the_range_and_rarely_clips():
    """The reference physics' exposure check on the ladder's full recording (rung 6): the
    brightest noise-free pixel uses at least 80% of the 8-bit range without reaching the
    ceiling, and under 0.1% of the pixels clip (docs/ladder.md, rung 6)."""
    import dask

    from graphs._common import rung_spec

    spec = rung_spec(6)
    rec = simulate(spec)
    expected_peak, clipped = dask.compute(
        simulate(spec, until="leakage").expected_counts().max(), (rec.observed == 255).sum()
    )
    assert 0.8 * 255 <= int(expected_peak) < 255
    assert int(clipped) / rec.observed.size < 1e-3


@pytest.mark.parametrize("shot_noise", ["poisson", "gaussian", "noiseless"])
@pytest.mark.parametrize("imperfect", [False, True])
def test_compiled_and_numpy_readouts_give_identical_bytes(monkeypatch, shot_noise, imperfect):
    """The fused compiled readout repeats the numpy one operation for operation."""
    pytest.importorskip("numba")
    from minisim.steps.sensor_pattern import Pattern

    shape = (48, 40)
    pattern = None
    if imperfect:
        pattern = Pattern(seed=3, shape=shape, black_level_adu=7.5, dark_e=0.3,
                          hot_pixel_e=90.0, hot_pixel_fraction=0.01, dsnu_e=1.5, prnu=0.05,
                          row_noise_e=2.0)  # fmt: skip
    noise = shot_noise != "noiseless"
    ro = readout(photons_per_unit=37.0, quantum_efficiency=0.7, read_noise_e=1.6,
                 gain_adu_per_e=0.9, max_count=4095, dtype="<u2",
                 shot_noise="poisson" if not noise else shot_noise, noise=noise,
                 pattern=pattern)  # fmt: skip
    rng = np.random.default_rng(5)
    # From darkness (and a little negative intensity, clipped to 0) to saturation, and
    # means on both sides of the sampler's inversion/rejection switch.
    intensity = rng.uniform(-0.05, 1.0, (6, *shape)).astype(np.float32) ** 3 * 200
    outputs = {}
    for backend in ("numba", "numpy"):
        monkeypatch.setenv("MINISIM_KERNELS", backend)
        outputs[backend] = digitize_frames(10, 16, intensity, ro)
    assert outputs["numba"].dtype == np.uint16
    assert 0 < (outputs["numba"] == 4095).mean() < 0.5  # the clip is exercised
    np.testing.assert_array_equal(outputs["numba"], outputs["numpy"])
