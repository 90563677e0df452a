"""A real CMOS sensor: black level, dark current, DSNU, PRNU, hot pixels and row noise,
checked against their closed forms and against the ground truth the recording stores."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from minisim import Acquisition, ImageSensor, Optics, Sensor, Spec, simulate
from minisim.conformance import StepConformance
from minisim.steps.sensor import Readout, digitize_frames
from minisim.steps.sensor_pattern import (
    Pattern,
    dark_electrons,
    dark_offset_electrons,
    gain_map,
    hot_pixel_mask,
    offset_adu,
    row_offset_frames,
)

SIZE, FRAMES = 24, 400


def readout(pattern: Pattern | None, **kw) -> Readout:
    base = dict(seed=5, photons_per_unit=1.0, quantum_efficiency=1.0, read_noise_e=2.0,
                gain_adu_per_e=1.0, max_count=4095, dtype="<u2", shot_noise="poisson")  # fmt: skip
    return Readout(**{**base, **kw}, pattern=pattern)


def pattern(**kw) -> Pattern:
    return Pattern(seed=5, shape=(SIZE, SIZE), **kw)


def dark(frames=FRAMES, value=0.0):
    return np.full((frames, SIZE, SIZE), value, np.float32)


def test_dark_frames_mean_and_variance_per_pixel():
    # Darkness: counts = floor(Poisson(dark) + read·N + dsnu offset + black level).
    pat = pattern(black_level_adu=40.0, dark_e=6.0, dsnu_e=3.0, hot_pixel_fraction=0.05,
                  hot_pixel_e=60.0)  # fmt: skip
    counts = digitize_frames(0, FRAMES, dark(), readout(pat)).astype(float)
    mean, var = counts.mean(axis=0), counts.var(axis=0)
    dark_e = dark_electrons(pat)
    expected_var = dark_e + 2.0**2 + 1 / 12  # shot of the dark current + read + quantization
    # The floor removes 0.5 on average; per pixel, 5 standard errors.
    expected_mean = offset_adu(pat, 1.0) - 0.5
    assert np.all(np.abs(mean - expected_mean) < 5 * np.sqrt(expected_var / FRAMES))
    # Variance of a variance estimate ≈ var·sqrt(2/n) (near-normal counts).
    assert np.all(np.abs(var - expected_var) < 5 * expected_var * np.sqrt(2 / FRAMES))
    # The closed form's pieces: the offset is black + dark current + the DSNU offset.
    assert np.allclose(offset_adu(pat, 1.0), 40.0 + dark_e + dark_offset_electrons(pat))
    spread = dark_offset_electrons(pat)
    assert abs(spread.std() - 3.0) < 5 * 3.0 / np.sqrt(2 * spread.size)


def test_hot_pixels_are_the_declared_fraction_and_as_bright_as_declared():
    pat = pattern(dark_e=1.0, hot_pixel_fraction=0.1, hot_pixel_e=50.0)
    mask = hot_pixel_mask(pat)
    n = mask.size
    assert abs(mask.mean() - 0.1) < 5 * np.sqrt(0.1 * 0.9 / n)
    counts = digitize_frames(0, FRAMES, dark(), readout(pat, read_noise_e=0.0)).astype(float)
    mean = counts.mean(axis=0) + 0.5
    # Hot: Poisson(50) per frame; cold: Poisson(1) (whose floor bias is not 0.5: compare
    # the raw Poisson mean).
    assert np.all(np.abs(mean[mask] - 50.5) < 5 * np.sqrt(50 / FRAMES) + 0.01)
    assert np.all(np.abs(counts.mean(axis=0)[~mask] - 1.0) < 5 * np.sqrt(1 / FRAMES))


def test_light_follows_the_gain_field():
    # Bright flat light: mean count = gain·(λ·gain_map) − 0.5; the gain map is the PRNU.
    lam, prnu = 400.0, 0.05
    pat = pattern(prnu=prnu, black_level_adu=10.0)
    counts = digitize_frames(0, 100, dark(100, lam), readout(pat)).astype(float)
    field = gain_map(pat)
    assert abs(field.std() - prnu) < 5 * prnu / np.sqrt(2 * field.size)
    expected = lam * field + 10.0 - 0.5
    se = np.sqrt((lam * field + 4.0) / 100)
    assert np.all(np.abs(counts.mean(axis=0) - expected) < 5 * se)
    # A flat-field estimate recovers the truth map.
    estimate = (counts.mean(axis=0) - 10.0 + 0.5) / lam
    assert np.corrcoef(estimate.ravel(), field.ravel())[0, 1] > 0.95


def test_row_noise_is_the_variance_of_the_row_means_and_matches_its_truth():
    row = 4.0
    pat = pattern(row_noise_e=row, black_level_adu=30.0)
    counts = digitize_frames(0, FRAMES, dark(), readout(pat)).astype(float)
    row_means = counts.mean(axis=2)  # (frame, y)
    # A row's frame mean = black + row offset + the average of SIZE pixels' read noise.
    expected = row**2 + (2.0**2 + 1 / 12) / SIZE
    n = row_means.size
    assert abs(row_means.var() - expected) < 5 * expected * np.sqrt(2 / n)
    truth = row_offset_frames(0, FRAMES, pat)
    residual = row_means - 30.0 + 0.5 - truth
    assert abs(residual.mean()) < 5 * np.sqrt((2.0**2 + 1 / 12) / (SIZE * n))
    assert residual.std() < 2 * np.sqrt((2.0**2 + 1 / 12) / SIZE)


def test_zero_imperfections_change_no_byte():
    light = np.random.default_rng(0).uniform(0, 30, (6, SIZE, SIZE)).astype(np.float32)
    for mode in ("poisson", "gaussian"):
        ideal = digitize_frames(0, 6, light, readout(None, shot_noise=mode))
        zero = digitize_frames(0, 6, light, readout(pattern(), shot_noise=mode))
        assert ideal.tobytes() == zero.tobytes()


def test_the_fixed_pattern_is_fixed_and_the_row_noise_keyed_by_frame():
    pat = pattern(dsnu_e=5.0, prnu=0.1, row_noise_e=3.0, hot_pixel_fraction=0.02)
    light = dark(10, 20.0)
    whole = digitize_frames(0, 10, light, readout(pat))
    for start in range(10):  # any frame recomputed alone gives the same counts
        assert np.array_equal(digitize_frames(start, start + 1, light[:1], readout(pat))[0],
                              whole[start])  # fmt: skip
    assert np.array_equal(row_offset_frames(3, 7, pat), row_offset_frames(0, 10, pat)[3:7])
    other = Pattern(seed=6, shape=pat.shape, dsnu_e=5.0)
    assert not np.array_equal(dark_offset_electrons(pat), dark_offset_electrons(other))


def sensor_acquisition(**sensor) -> Acquisition:
    return Acquisition(
        fps=20.0,
        duration_s=10.0,
        optics=Optics(magnification=8.0),
        image_sensor=ImageSensor(
            n_px_height=20, n_px_width=20, pixel_pitch_um=8.0, bit_depth=12, **sensor
        ),  # fmt: skip
    )


REAL = dict(black_level_adu=50.0, dark_current_e_per_s=100.0, dsnu_e=2.0, prnu=0.02,
            hot_pixel_fraction=0.02, hot_pixel_e_per_s=1000.0, row_noise_e=3.0)  # fmt: skip


def test_a_dark_recording_agrees_with_its_ground_truth():
    spec = Spec(acquisition=sensor_acquisition(**REAL), seed=2, steps=[Sensor()])
    ds = simulate(spec).dataset.compute()
    counts = ds["observed"].values.astype(float)
    offset = ds["sensor_offset_adu"].values
    rows = ds["row_offset_e"].values
    hot = ds["hot_pixels"].values
    n = counts.shape[0]
    # Per pixel: temporal mean = offset − 0.5 within 5 standard errors of its variance.
    dark_e = np.where(hot, 1000.0, 100.0) / 20.0
    var = dark_e + 2.0**2 + 3.0**2 + 1 / 12
    assert np.all(np.abs(counts.mean(axis=0) - (offset - 0.5)) < 5 * np.sqrt(var / n))
    # Hot pixels shine: offset − black ≥ hot dark electrons minus a few DSNU sigmas.
    assert np.all(offset[hot] - 50.0 > 50.0 - 5 * 2.0)
    # Rows: each frame's row mean minus the pixels' offsets is the recorded row offset.
    residual = (counts - offset + 0.5).mean(axis=2) - rows
    assert residual.std() < 2 * np.sqrt((dark_e.mean() + 4.0 + 1 / 12) / 20)
    assert (
        ds["sensor_gain"].dims == ("y", "x") and abs(ds["sensor_gain"].values.std() - 0.02) < 0.01
    )
    for name in ("sensor_offset_adu", "sensor_gain", "hot_pixels", "row_offset_e"):
        assert ds[name].attrs["units"] is not None


def test_an_ideal_sensor_stores_no_imperfection_truth():
    spec = Spec(acquisition=sensor_acquisition(), seed=2, steps=[Sensor()])
    ds = simulate(spec).dataset
    assert not {"sensor_offset_adu", "sensor_gain", "hot_pixels", "row_offset_e"} & set(
        ds.variables
    )


def test_implausible_imperfections_fail_with_the_field_and_the_fix():
    with pytest.raises(ValidationError, match="black_level_adu=300.*below 2\\*\\*bit_depth"):
        ImageSensor(black_level_adu=300.0)
    with pytest.raises(ValidationError, match="prnu"):
        ImageSensor(prnu=0.8)
    with pytest.raises(ValidationError, match="dark_current_e_per_s=1e\\+09"):
        ImageSensor(dark_current_e_per_s=1e9)


class TestRealSensorConformance(StepConformance):
    """The conformance checks with every imperfection switched on."""

    step = Sensor()
    acquisition = Acquisition(
        fps=20.0,
        duration_s=1.5,
        optics=Optics(magnification=8.0),
        image_sensor=ImageSensor(
            n_px_height=32, n_px_width=32, pixel_pitch_um=8.0, bit_depth=12, **REAL
        ),  # fmt: skip
    )

    def test_the_imperfections_are_in_the_recording(self):
        ds = simulate(self.spec()).dataset
        assert ds["row_offset_e"].dims == ("frame", "y")
        assert ds["row_offset_e"].dtype == np.float64
        assert ds["hot_pixels"].dtype == bool


def test_noise_floor_adds_dark_shot_and_row_noise_in_quadrature():
    from minisim.steps.detection import temporal_noise_e

    plain = ImageSensor(read_noise_e=2.0)
    assert temporal_noise_e(Acquisition(fps=20.0, image_sensor=plain)) == 2.0
    # The static pattern (black level, DSNU, PRNU, hot pixels) is no temporal noise.
    static = ImageSensor(read_noise_e=2.0, black_level_adu=10.0, dsnu_e=5.0, prnu=0.05,
                         hot_pixel_fraction=0.01)  # fmt: skip
    assert temporal_noise_e(Acquisition(fps=20.0, image_sensor=static)) == 2.0
    cmos = ImageSensor(read_noise_e=2.0, dark_current_e_per_s=100.0, row_noise_e=3.0)
    # read² + dark current × frame period (its shot-noise variance) + row²
    expected = np.sqrt(4.0 + 100.0 / 20.0 + 9.0)
    assert temporal_noise_e(Acquisition(fps=20.0, image_sensor=cmos)) == pytest.approx(expected)


def _detectable_closed_form(ds, ppu, qe, noise_e):
    from minisim.steps.detection import DETECT_SNR_THRESHOLD

    c = ds["C"].values.astype(float)
    low, high = c.min(axis=1), c.max(axis=1)
    gain = ppu * qe * ds["observed_peak"].values  # no scope fields, no vessels
    snr = (high - low) * gain / np.sqrt(np.maximum(low, 0) * gain + noise_e**2)
    return snr >= DETECT_SNR_THRESHOLD


@pytest.mark.filterwarnings("ignore::minisim.SpecWarning")
def test_detectable_flag_uses_the_cmos_noise_floor():
    from tests.test_sensor import sensor_spec

    ppu = 3.0
    spec = sensor_spec([(50.0, -15.0, -15.0), (70.0, 15.0, 15.0)], ppu=ppu)
    noisy_sensor = spec.acquisition.image_sensor.model_copy(
        update=dict(dark_current_e_per_s=200.0, row_noise_e=4.0, dsnu_e=3.0)
    )
    noisy = spec.model_copy(
        update=dict(acquisition=spec.acquisition.model_copy(update={"image_sensor": noisy_sensor}))
    )
    clean_ds = simulate(spec).dataset
    noisy_ds = simulate(noisy).dataset
    qe = noisy_sensor.quantum_efficiency
    floor = np.sqrt(2.0**2 + 200.0 / 20.0 + 4.0**2)
    assert np.array_equal(
        clean_ds.detectable.values, _detectable_closed_form(clean_ds, ppu, qe, 2.0)
    )
    assert np.array_equal(
        noisy_ds.detectable.values, _detectable_closed_form(noisy_ds, ppu, qe, floor)
    )
    # The extra noise hides a cell the read noise alone lets through.
    assert clean_ds.detectable.values.sum() > noisy_ds.detectable.values.sum()


def test_auto_focus_counts_the_cmos_noise_floor():
    """Three shallow cells detectable only against the read noise, two deep bright ones
    against any floor: read noise alone focuses on the three, row and dark noise on the two."""
    from minisim.steps.detection import DETECT_SNR_THRESHOLD, detection_snr
    from minisim.steps.optics import yield_maximizing_focal_plane

    def acquisition(**cmos):
        sensor = ImageSensor(n_px_height=200, n_px_width=200, pixel_pitch_um=8.0, **cmos)
        return Acquisition(fps=20.0, optics=Optics(magnification=8.0), image_sensor=sensor)

    centers = np.array([[z, 0.0, 0.0] for z in (20.0, 21.0, 22.0, 120.0, 121.0)])
    peak = np.array([1.5] * 3 + [40.0] * 2)
    base, radius = np.ones(5), np.full(5, 5.0)
    plain, cmos = acquisition(), acquisition(dark_current_e_per_s=400.0, row_noise_e=8.0)
    noise = {plain: 2.0, cmos: np.sqrt(4.0 + 400.0 / 20.0 + 64.0)}

    def n_detectable(acq, focal):  # the closed form of the scan, at one plane
        z = centers[:, 0]
        s0 = acq.optics.diffraction_sigma_um**2 + acq.tissue.scatter_sigma_um(z) ** 2
        disk = 1 - np.exp(-(5.0**2) / (2 * (s0 + (acq.optics.na * (z - focal)) ** 2)))
        g = acq.tissue.attenuation(z) * acq.optics.na**2 * 100 * 0.7 * disk
        return (detection_snr(peak, base, g, noise[acq]) >= DETECT_SNR_THRESHOLD)[:3].sum(), (
            detection_snr(peak, base, g, noise[acq]) >= DETECT_SNR_THRESHOLD
        )[3:].sum()

    shallow = yield_maximizing_focal_plane(plain, centers, radius, peak, base, 100.0)
    deep = yield_maximizing_focal_plane(cmos, centers, radius, peak, base, 100.0)
    assert 19.0 <= shallow <= 23.0 and n_detectable(plain, shallow) == (3, 0)
    assert deep > 100.0 and n_detectable(cmos, deep)[1] == 2
    assert n_detectable(cmos, shallow)[0] == 0  # the shallow three drown in the CMOS noise


@pytest.mark.parametrize("bits, gain_adu", [(8, 1.0), (12, 0.5)])
def test_mean_counts_match_the_empirical_mean_with_the_fixed_pattern(bits, gain_adu):
    """The closed-form mean count of every pixel (black level, dark current and hot
    pixels, DSNU, PRNU, row noise, the floor and the clipping at both ends of the ADC)
    against the mean of many noisy read-outs, within 5 standard errors per pixel."""
    from minisim.steps.sensor import mean_counts

    frames = 3000
    top = 2**bits - 1
    pat = pattern(black_level_adu=3.0, dark_e=4.0, dsnu_e=2.0, prnu=0.05,
                  hot_pixel_fraction=0.05, hot_pixel_e=40.0, row_noise_e=1.5)  # fmt: skip
    # A ramp from darkness (clipped at 0 below the black level) past saturation.
    ramp = np.linspace(-5.0, 1.2 * top / gain_adu, SIZE * SIZE).reshape(SIZE, SIZE)
    out = readout(pat, max_count=top, gain_adu_per_e=gain_adu,
                  dtype="|u1" if bits <= 8 else "<u2")  # fmt: skip
    counts = digitize_frames(0, frames, np.broadcast_to(ramp, (frames, SIZE, SIZE)), out)
    counts = counts.astype(float)
    mean, error = counts.mean(axis=0), counts.std(axis=0) / np.sqrt(frames)
    expected = mean_counts(ramp.astype(np.float32), out)
    assert np.all(np.abs(mean - expected) <= 5 * error + 0.02)
    # Both ends are exercised: pixels that clip at 0 and at the top.
    assert (counts == 0).any() and (counts == top).all(axis=0).any()
