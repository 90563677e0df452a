"""Rung 6: bleaching, the full chain, and lossless streamed video."""

from __future__ import annotations

import numpy as np
import pytest

from minisim import (
    Bleaching,
    BrainMotion,
    CellActivity,
    CellOptics,
    Composite,
    IlluminationProfile,
    Leakage,
    NeuronPopulation,
    Neuropil,
    PlaceNeurons,
    Sensor,
    Spec,
    Vignette,
    simulate,
    simulate_video,
)
from minisim.io.video import read_video, to_uint8
from minisim.steps.bleaching import BleachParams, bleach_scan_step, bleaching_floor, dark_recovery

from .conftest import NothingComputes, small_acquisition


def test_rung6_verbatim_and_video(ladder_acq, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    acq = ladder_acq.model_copy(update={"duration_s": 2.0})  # the ladder's 20 s, shortened
    with NothingComputes():
        rec = simulate(Spec(acquisition=acq, seed=1, steps=[
            PlaceNeurons(), CellActivity(),
            Bleaching(),
            CellOptics(), Composite(), Neuropil(),
            BrainMotion(),
            IlluminationProfile(), Vignette(), Leakage(),
            Sensor(),
        ]))  # fmt: skip
        gt = rec.ground_truth
    assert gt.detectable.dtype == bool and gt.detectable.shape == (gt.n_units,)
    counts = rec.observed.values
    assert counts.dtype == np.uint8 and counts.shape == (40, 200, 200)
    rec.write_video("recording.avi")
    assert np.array_equal(read_video("recording.avi"), counts)  # lossless, vmax = 255
    simulate_video(rec.spec, "again.avi", progress=False)
    assert np.array_equal(read_video("again.avi"), counts)


def test_video_needs_vmax_without_a_sensor(tmp_path):
    spec = Spec(acquisition=small_acquisition(px=32, duration_s=1.0), steps=[
        PlaceNeurons(), CellActivity(), Composite()])  # fmt: skip
    rec = simulate(spec)
    with pytest.raises(ValueError, match="vmax is required"):
        rec.write_video(tmp_path / "x.avi")
    vmax = float(rec.observed.max())
    path = rec.write_video(tmp_path / "x.avi", vmax=vmax, progress=False)
    decoded = read_video(path)
    assert np.array_equal(decoded, to_uint8(rec.observed.values, 0.0, vmax))
    assert decoded.max() == 255


def test_uint8_mapping():
    out = to_uint8(np.array([-1.0, 0.0, 0.5, 1.0, 2.0]), 0.0, 1.0)
    assert out.tolist() == [0, 0, 128, 255, 255]
    assert to_uint8(np.array([3.0]), 3.0, 3.0).tolist() == [0]


def test_video_is_the_same_whatever_the_chunks(tmp_path):
    spec = Spec(acquisition=small_acquisition(px=32, duration_s=2.0), seed=4, steps=[
        PlaceNeurons(), CellActivity(), Composite(), Sensor()])  # fmt: skip
    a = simulate(spec, chunks=7).write_video(tmp_path / "a.avi", progress=False)
    b = simulate(spec, chunks=-1).write_video(tmp_path / "b.avi", progress=False)
    assert np.array_equal(read_video(a), read_video(b))


def test_bleaching_pool_kernel_against_the_closed_form():
    params = BleachParams(per_frame_rate=0.01, turnover_frames=500.0)
    emission = np.full((2, 300), 3.0)
    excitation = np.array([1.0, 0.5])
    pool, out, mean, emitted = bleach_scan_step(np.ones(2), 0, 0, 300, emission, params, excitation)
    assert out[:, 0].tolist() == [1.0, 1.0]
    np.testing.assert_allclose(mean, out.mean(axis=0))  # the per-frame mean fade
    assert np.array_equal(emitted, emission * out)  # composite's input: C·B
    assert np.all(np.diff(out, axis=1) < 0)  # monotone decay
    # Constant drive: exponential approach to the floor with rate k = 1/τ + q·I·e.
    for i in range(2):
        k = 1 / 500 + 0.01 * excitation[i] * 3.0
        floor = bleaching_floor(0.01, excitation[i], 3.0, 500.0)
        assert floor == pytest.approx((1 / 500) / k)
        t = np.arange(300)
        np.testing.assert_allclose(out[i], floor + (1 - floor) * np.exp(-k * t), rtol=2e-6)
    assert out[0, -1] < out[1, -1]  # brighter excitation bleaches more
    # The floor is a fixed point.
    f = bleaching_floor(0.01, 1.0, 3.0, 500.0)
    same, *_ = bleach_scan_step(np.array([f]), 0, 0, 10, emission[:1, :10], params, np.ones(1))
    assert same[0] == pytest.approx(f, rel=1e-12)
    # In the dark the pool recovers with the turnover time.
    dark, *_ = bleach_scan_step(np.array([0.4]), 0, 0, 200, np.zeros((1, 200)), params, np.ones(1))
    assert dark[0] == pytest.approx(float(dark_recovery(0.4, 200, 500.0)), rel=1e-12)
    with pytest.raises(ValueError):
        dark_recovery(0.5, 1.0, 0.0)
    with pytest.raises(ValueError):
        bleaching_floor(-1.0, 1.0, 1.0, 1.0)


def bleach_spec(susceptibility, seconds=20.0):
    pops = [
        NeuronPopulation(positions_um=[(20.0, 0.0, 0.0), (20.0, 35.0, 35.0)], soma_radius_um=4.0)
    ]
    return Spec(acquisition=small_acquisition(px=80, duration_s=seconds), seed=1, steps=[
        PlaceNeurons(populations=pops), CellActivity(brightness_cv=0.0), Bleaching(bleach_susceptibility=susceptibility),
        Composite(), IlluminationProfile(falloff=0.2)])  # fmt: skip


def test_bleaching_in_a_recording():
    default = simulate(bleach_spec(6.3e-6)).ground_truth.bleaching.values
    assert default.min() > 0.999  # negligible over 20 s at the defaults
    strong = simulate(bleach_spec(0.05, seconds=60.0)).compute()
    fade = strong.ground_truth.bleaching.values
    assert fade[:, -1].max() < 0.9  # visible when exaggerated
    assert fade[0, -1] < fade[1, -1]  # the centre is excited harder than the corner
    excitation = strong.ground_truth.excitation.values
    assert (
        excitation[0] == pytest.approx(1.0, abs=1e-3) and excitation[1] < 0.7
    )  # centre falls between pixels
    # Composite emits C·B: the later frames are dimmer than C alone would make them.
    cells = simulate(strong.spec, until="cells_only").observed.values
    unbleached = simulate(strong.spec.model_copy(update={"steps": tuple(
        s for s in strong.spec.steps if s.kind != "bleaching")}), until="cells_only").observed.values  # fmt: skip
    assert cells[-1].sum() < 0.95 * unbleached[-1].sum()


def test_video_before_the_sensor_needs_vmax(tmp_path):
    spec = Spec(acquisition=small_acquisition(px=32, duration_s=1.0), steps=[
        PlaceNeurons(), CellActivity(), Composite(), Sensor()])  # fmt: skip
    with pytest.raises(ValueError, match="vmax is required"):
        simulate(spec, until="composite").write_video(tmp_path / "x.avi")
