"""Breathing vessels: radii follow activity after a delay plus vasomotion, and every
frame's shading is Beer–Lambert through the vessels at the recorded radius."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from minisim import (
    Acquisition,
    CellActivity,
    Composite,
    ImageSensor,
    Neuropil,
    Optics,
    Output,
    PlaceNeurons,
    Spec,
    Vasculature,
    VesselDilation,
    VesselLayer,
    simulate,
)
from minisim.conformance import StepConformance
from minisim.engine import stream
from minisim.steps.vasculature import grow_layer, rasterize_vessels, transmission, vessel_mask
from minisim.steps.vessel_dilation import (
    causal_filter,
    coupling_kernel,
    dilation_series,
    path_length,
    vessel_pairs,
)

from .conftest import small_acquisition

LAYER = VesselLayer(depth_um=20.0, root_radius_um=12.0, min_radius_um=4.0, n_roots=2)
BREATHING = Vasculature(
    enabled=True,
    layers=[LAYER],
    dilation=VesselDilation(neurovascular_gain=0.2, vasomotion_amplitude=0.1, vasomotion_hz=0.3),
)


@pytest.mark.parametrize("scale", [0.5, 0.8, 1.0, 1.23, 1.5])
def test_path_length_is_the_rasterizer_with_scaled_radii(scale):
    canvas, px = (48, 56), 1.0
    segments = grow_layer(LAYER, canvas, px, seed=3, index=0)
    scaled = segments.copy()
    scaled[:, 4] *= scale
    reference = rasterize_vessels(scaled, canvas, px)
    assert reference.max() > 0
    assert np.allclose(path_length(vessel_pairs(segments, canvas, px), scale, canvas), reference,
                       rtol=1e-12, atol=1e-12)  # fmt: skip


def test_beer_lambert_at_the_centre_of_a_vessel():
    # One straight vessel along row 10 (its axis through the pixel centres): on the axis
    # the blood path is the diameter 2·r·s, so shading = 1 − opacity·(1 − exp(−μ·2rs)).
    canvas, px, r = (21, 40), 1.0, 4.0
    segment = np.array([[10.5, 0.0, 10.5, 40.0, r]])
    pairs = vessel_pairs(segment, canvas, px)
    for s in (0.6, 1.0, 1.4):
        length = path_length(pairs, s, canvas)
        assert np.allclose(length[10, 2:-2], 2 * r * s)
        shade = transmission(length, 0.8, 0.05)
        assert np.allclose(shade[10, 5], 1 - 0.8 * (1 - math.exp(-0.05 * 2 * r * s)))
        # Off the axis by d: the chord 2·sqrt((rs)² − d²).
        assert np.allclose(length[12, 5], 2 * math.sqrt(max((r * s) ** 2 - 4.0, 0)))


def test_vasomotion_is_a_sine_at_its_frequency_with_a_keyed_phase():
    fps, n = 20.0, 2000
    dil = VesselDilation(neurovascular_gain=0.0, vasomotion_amplitude=0.1, vasomotion_hz=0.1)
    series = dilation_series(None, n, 2, dil, fps, seed=7)
    t = np.arange(n) / fps
    for layer in range(2):
        phase = stream(7, "vasculature", "vasomotion", layer).uniform(0.0, 2 * math.pi)
        assert np.allclose(series[:, layer], 0.1 * np.sin(2 * math.pi * 0.1 * t + phase))
    assert not np.allclose(series[:, 0], series[:, 1])  # layers breathe out of phase


def test_activity_dilates_the_vessels_after_the_neurovascular_delay():
    fps, n, delay = 20.0, 400, 1.5
    dil = VesselDilation(neurovascular_gain=0.3, neurovascular_delay_s=delay,
                         vasomotion_amplitude=0.0)  # fmt: skip
    population = np.ones(n)
    population[100] += 20.0  # one burst of activity: P/mean(P) − 1 is an impulse
    series = dilation_series(population, n, 1, dil, fps, seed=0)[:, 0]
    relative = population / population.mean() - 1
    taps = coupling_kernel(delay * fps)
    reference = 0.3 * np.convolve(relative, taps)[:n]  # eager reference of the causal filter
    assert np.allclose(series, np.clip(reference, -0.5, 0.5), atol=1e-12)
    assert int(np.argmax(series)) == 100 + round(delay * fps)  # peak after the delay
    assert np.all(series[:100] <= 0)  # nothing dilates before the activity (causal)
    assert np.allclose(causal_filter(relative, taps), np.convolve(relative, taps)[:n])
    assert math.isclose(taps.sum(), 1.0)


def test_every_frame_is_shaded_by_its_recorded_radius():
    acq = small_acquisition(px=40, duration_s=4.0)
    steps = [PlaceNeurons(), CellActivity(), Composite(), Neuropil(), BREATHING]
    spec = Spec(acquisition=acq, seed=1, steps=steps, output=Output(save_intermediates=True))
    ds = simulate(spec, chunks=9).dataset.compute()
    dilation = ds["vessel_dilation"].values
    assert dilation.shape == (acq.n_frames, 1) and dilation.std() > 0.01
    before, after = ds["stage_neuropil"].values, ds["stage_vasculature"].values
    canvas = before.shape[1:]
    segments = grow_layer(LAYER, canvas, acq.pixel_size_um, spec.seed, 0)
    focal = float(ds.attrs.get("focal_depth_um", np.median(ds["depth_um"].values)))
    for frame in range(0, acq.n_frames, 7):
        scaled = segments.copy()
        scaled[:, 4] *= 1 + dilation[frame, 0]
        # The eager reference: the rest mask's own code with the recorded radius.
        mask = vessel_mask(acq, [LAYER], [scaled], canvas, focal).astype(np.float32)
        assert np.array_equal(after[frame], before[frame] * mask), frame
    # The vessels' shadow really changes over time (where the light passes vessels).
    ratio = after / np.maximum(before, 1e-12)
    assert ratio.std(axis=0).max() > 0.01


def test_without_dilation_the_vessels_stand_still():
    acq = small_acquisition(px=32, duration_s=1.0)
    still = Vasculature(enabled=True, layers=[LAYER])
    ds = simulate(Spec(acquisition=acq, seed=1, steps=[PlaceNeurons(), CellActivity(), Composite(),
                                                        still])).dataset  # fmt: skip
    assert "vessel_dilation" not in ds.variables


def test_bad_dilation_fails_with_the_field():
    with pytest.raises(ValidationError, match="vasomotion_amplitude"):
        VesselDilation(vasomotion_amplitude=0.9)
    with pytest.raises(ValidationError, match="neurovascular_delay_s"):
        VesselDilation(neurovascular_delay_s=0)


class TestBreathingVesselsConformance(StepConformance):
    """The conformance checks with breathing vessels."""

    step = BREATHING
    acquisition = Acquisition(
        fps=20.0,
        duration_s=1.5,
        optics=Optics(magnification=8.0),
        image_sensor=ImageSensor(n_px_height=32, n_px_width=32, pixel_pitch_um=8.0),
    )


def test_breathing_with_the_sensor_auto_focus_stays_lazy_and_chunk_invariant():
    # With optics and a sensor, the focal plane (hence the shadows' blur) waits on the traces.
    from minisim import CellOptics, Sensor

    from .conftest import NothingComputes

    acq = small_acquisition(px=32, duration_s=1.5)
    steps = [PlaceNeurons(), CellActivity(), CellOptics(), Composite(), BREATHING, Sensor()]
    spec = Spec(acquisition=acq, seed=2, steps=steps)
    with NothingComputes():
        rec = simulate(spec, chunks=4)
    a = rec.dataset.compute()
    b = simulate(spec, chunks=-1).dataset.compute()
    for name in ("observed", "vessel_dilation", "vasculature_mask"):
        assert np.array_equal(a[name].values, b[name].values), name
