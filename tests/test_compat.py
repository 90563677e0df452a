"""Names people bring from minisim 1.0: thin aliases over this package's API, and errors
that say what to use where the two deliberately differ."""

from __future__ import annotations

import numpy as np
import pytest

import minisim
from minisim import ImageSensor, Output, Recording, sample_field_at, simulate, simulate_video
from minisim.steps.sensor import Readout, digitize_frame
from minisim.testing import make_recording, make_spec


def test_save_and_load_are_to_zarr_and_open_recording(tmp_path):
    rec = make_recording(duration_s=0.5)
    store = rec.save(tmp_path / "r.zarr")
    back = Recording.load(store)
    np.testing.assert_array_equal(back.observed.values, rec.observed.values)
    np.testing.assert_array_equal(back.ground_truth.C.values, rec.ground_truth.C.values)
    assert back.spec == rec.spec


def test_observed_movie_and_snapshots():
    spec = make_spec(duration_s=0.5).model_copy(update={"output": Output(save_intermediates=True)})
    rec = simulate(spec)
    assert rec.observed_movie is rec.observed or rec.observed_movie.equals(rec.observed)
    assert rec.observed_movie.dims == ("frame", "y", "x")
    snaps = rec.snapshots
    assert list(snaps) == rec.stages and "cells_only" in snaps
    np.testing.assert_array_equal(snaps["sensor"].values, rec.observed.values)
    np.testing.assert_array_equal(snaps["cells_only"].values, rec.stage("composite").values)
    assert simulate(make_spec(duration_s=0.5)).snapshots == {}


def test_planted_and_the_field_geometry():
    rec = make_recording(
        duration_s=0.5, motion=minisim.BrainMotion(max_shift_um=4.0, motion_amplitude_um=2.0)
    )
    gt = rec.ground_truth
    assert gt.planted.equals(gt.A_planted)
    assert gt.fov_shape == (128, 128)
    margin = rec.spec.step("brain_motion").margin_px(rec.spec.acquisition)
    assert gt.fov_offset == (margin, margin) and margin > 0
    assert make_recording(duration_s=0.5).ground_truth.fov_offset == (0, 0)


def test_photons_to_counts_noise_free_is_the_sensor_kernel():
    sensor = ImageSensor(quantum_efficiency=0.6, gain_adu_per_e=1.7)
    photons = np.linspace(-5.0, 300.0, 4096).reshape(64, 64)
    readout = Readout(seed=0, photons_per_unit=1.0, quantum_efficiency=0.6, read_noise_e=2.0,
                      gain_adu_per_e=1.7, max_count=255, dtype="uint8", shot_noise="poisson",
                      noise=False)  # fmt: skip
    expected = digitize_frame(photons, readout, 0)
    np.testing.assert_array_equal(sensor.photons_to_counts(photons), expected)
    # closed form: floor(max(photons, 0) · QE · gain), clipped
    closed = np.clip(np.floor(np.maximum(photons, 0) * 0.6 * 1.7), 0, 255)
    np.testing.assert_array_equal(sensor.photons_to_counts(photons), closed)


@pytest.mark.parametrize("shot_noise", ["poisson", "gaussian"])
def test_photons_to_counts_statistics(shot_noise):
    sensor = ImageSensor(read_noise_e=3.0, gain_adu_per_e=1.0, bit_depth=12)
    photons = np.full(200_000, 100.0)  # λ = 70 electrons
    counts = sensor.photons_to_counts(photons, np.random.default_rng(1), shot_noise=shot_noise)
    assert counts.dtype == np.uint16
    lam, var = 70.0, 70.0 + 9.0
    # floor subtracts 0.5 on average and adds 1/12 of variance; 5σ tolerances
    assert abs(counts.mean() - (lam - 0.5)) < 5 * np.sqrt(var / counts.size)
    assert abs(counts.var() - (var + 1 / 12)) < 5 * var * np.sqrt(2 / counts.size)
    with pytest.raises(ValueError, match="shot_noise"):
        sensor.photons_to_counts(photons, np.random.default_rng(1), shot_noise="uniform")


def test_sample_field_at_nearest_pixel_clamped():
    field = np.arange(5 * 7, dtype=float).reshape(5, 7)  # centre pixel (2, 3)
    assert sample_field_at(field, 0.0, 0.0, 2.0) == field[2, 3]
    assert sample_field_at(field, 2.2, -4.1, 2.0) == field[3, 1]  # 1.1 → 1 row, −2.05 → −2
    assert sample_field_at(field, 1e6, -1e6, 2.0) == field[4, 0]  # clamped to the corner
    assert sample_field_at(None, 3.0, 3.0, 1.0) == 1.0
    rec = make_recording(duration_s=0.5, extra_steps=[minisim.IlluminationProfile()])
    gt = rec.ground_truth
    y, x = gt.centers_um.values[0, 1:]
    value = sample_field_at(gt.illumination, y, x, rec.spec.acquisition.pixel_size_um)
    row, col = (np.rint(v).astype(int) for v in rec.spec.acquisition.um_to_index(y, x, (128, 128)))
    assert value == float(gt.illumination.values[row, col])


def test_perf_says_what_to_use_instead():
    with pytest.raises(TypeError, match="Profiler"):
        simulate(make_spec(), perf=True)


def test_simulate_video_chunk_frames_and_codec_names(tmp_path):
    av = pytest.importorskip("av")
    spec = make_spec(duration_s=0.5, n_px=32)
    a = simulate_video(spec, tmp_path / "a.avi", chunk_frames=3, codec="Y800", progress=False)
    b = simulate_video(spec, tmp_path / "b.avi", chunks={"frame": 7}, codec="rawvideo",
                       progress=False)  # fmt: skip
    assert a.read_bytes() == b.read_bytes()
    with av.open(str(a)) as container:
        frames = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
    np.testing.assert_array_equal(np.stack(frames), simulate(spec).observed.values)
    mjpg = simulate_video(spec, tmp_path / "m.avi", codec="MJPG", progress=False)
    with av.open(str(mjpg)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "mjpeg"
        frames = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
    assert len(frames) == spec.acquisition.n_frames
    with pytest.raises(TypeError, match="not both"):
        simulate_video(spec, tmp_path / "c.avi", chunks=2, chunk_frames=3)
