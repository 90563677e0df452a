"""Presets: the reference numbers, the chain build_spec assembles, an end-to-end V4 + CA1."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from minisim import (
    Bleaching,
    BrainMotion,
    CellActivity,
    NeuronPopulation,
    Region,
    Scope,
    Sensor,
    Spec,
    build_spec,
    simulate,
    sweep,
)
from minisim.presets import ca1, cortex_l23, generic_1p, miniscope_v4

V4_CA1_CHAIN = [
    "place_neurons",
    "cell_activity",
    "optics",
    "composite",
    "neuropil",
    "vasculature",
    "illumination_profile",
    "vignette",
    "leakage",
    "sensor",
]


def test_miniscope_v4_numbers():
    v4 = miniscope_v4()
    assert v4.pixel_size_um == pytest.approx(1.6552, abs=1e-4)  # 4.8 µm / 2.9
    assert v4.fov_um[0] == pytest.approx(1006.3, abs=1.0) and v4.fov_um[0] == v4.fov_um[1]
    optics = v4.optics
    assert optics.resolved_depth_of_field_um == pytest.approx(7.758, abs=1e-3)
    assert optics.diffraction_sigma_um == pytest.approx(0.3675, abs=1e-4)
    assert optics.collection_efficiency == pytest.approx(0.09, rel=1e-12)
    assert optics.field_curvature_radius_um == 2500.0
    sensor = v4.image_sensor
    assert (sensor.n_px_height, sensor.n_px_width, sensor.bit_depth) == (608, 608, 8)
    assert (sensor.quantum_efficiency, sensor.read_noise_e, sensor.gain_adu_per_e) == (
        0.7,
        2.0,
        1.0,
    )
    assert (v4.illumination.falloff, v4.vignette.falloff) == (0.7, 0.6)
    assert (v4.leakage.profile, v4.leakage.level) == ("gaussian", 0.08)
    assert v4.photons_per_unit == 600.0 and v4.focal_depth_in_tissue_um == "auto"
    assert v4.front_working_distance_um == 700.0


def test_v4_leakage_width_is_a_quarter_of_the_field():
    spec = build_spec(miniscope_v4(), ca1(), duration_s=0.5)
    acq = spec.acquisition
    field = spec.step("leakage").field(acq)
    assert (acq.fov_shape[0] - 1) / 2 == 303.5  # the glow is centred between pixels
    r_px = 100.5 * np.sqrt(2)  # pixel (404, 404): 100.5 px from the centre on each axis
    expected_sigma_px = 251.6 / acq.pixel_size_um  # 0.25 · 1006.3 µm
    value = field[404, 404] / 0.08
    sigma_px = r_px / np.sqrt(-2 * np.log(value))
    assert sigma_px == pytest.approx(expected_sigma_px, rel=1e-3)


def test_generic_scope():
    g = generic_1p()
    assert g.illumination is g.vignette is g.leakage is None
    assert g.photons_per_unit == 100.0 and g.optics.na == 0.45
    assert g.fov_um == pytest.approx((96.0, 96.0), rel=1e-12)
    spec = build_spec(g, ca1(), duration_s=1.0)
    kinds = [s.kind for s in spec.steps]
    assert not {"illumination_profile", "vignette", "leakage"} & set(kinds)
    assert spec.step("sensor").photons_per_unit == 100.0


def test_regions_anatomy():
    c, k = ca1(), cortex_l23()
    assert (c.population.density_per_mm3, c.population.soma_radius_um) == (45000.0, 5.0)
    assert c.population.depth_range_um == (140.0, 160.0)
    assert c.population.morphology == k.population.morphology == "cytosolic"
    assert (k.population.density_per_mm3, k.population.soma_radius_um) == (8000.0, 6.0)
    assert k.population.depth_range_um == (100.0, 200.0)
    (cv,), (kv,) = c.vasculature.layers, k.vasculature.layers
    assert c.vasculature.enabled and k.vasculature.enabled
    assert (cv.depth_um, cv.n_roots, cv.root_radius_um, cv.opacity) == (120.0, 3, 14.0, 0.65)
    assert (kv.depth_um, kv.n_roots, kv.root_radius_um, kv.opacity) == (80.0, 2, 25.0, 0.9)
    assert (kv.branch_prob, kv.tortuosity_deg) == (0.15, 5.0)
    assert kv.root_radius_um > cv.root_radius_um and kv.opacity > cv.opacity
    assert k.neuropil.amplitude == 0.6 > c.neuropil.amplitude == 0.4


def test_models_are_frozen_and_strict():
    with pytest.raises(ValidationError):
        Scope(optics=generic_1p().optics, image_sensor=generic_1p().image_sensor, zoom=2)
    with pytest.raises(ValidationError):
        Region(population=NeuronPopulation())  # tissue is required
    with pytest.raises(ValidationError):
        miniscope_v4().photons_per_unit = 1.0
    with pytest.raises(ValidationError):
        Scope(
            optics=generic_1p().optics, image_sensor=generic_1p().image_sensor, photons_per_unit=0
        )


def test_build_spec_default_chain():
    spec = build_spec(miniscope_v4(), ca1(), duration_s=30.0, seed=3, fps=10.0)
    assert isinstance(spec, Spec) and [s.kind for s in spec.steps] == V4_CA1_CHAIN
    acq = spec.acquisition
    assert (acq.duration_s, acq.fps, acq.n_frames, spec.seed) == (30.0, 10.0, 300, 3)
    assert acq.optics == miniscope_v4().optics and acq.tissue == ca1().tissue
    assert acq.front_working_distance_um == 700.0 and acq.focal_depth_in_tissue_um == "auto"
    assert spec.step("sensor").photons_per_unit == 600.0
    assert spec.step("neuropil").amplitude == 0.4
    place = spec.step("place_neurons")
    assert place.population_list() == (ca1().population,)
    assert spec.step("cell_activity") == CellActivity()
    assert not spec.output.save_intermediates
    assert build_spec(miniscope_v4(), ca1(), save_intermediates=True).output.save_intermediates


def test_build_spec_overrides_and_toggles():
    pops = [NeuronPopulation(density_per_mm3=1000.0), NeuronPopulation(soma_radius_um=4.0)]
    spec = build_spec(
        miniscope_v4(),
        cortex_l23(),
        populations=pops,
        activity=CellActivity(f0=2.0),
        sensor=Sensor(photons_per_unit=50.0),
        extra_steps=[Bleaching(), BrainMotion(motion_amplitude_um=3.0)],
    )
    assert spec.step("place_neurons").populations == tuple(pops)
    assert spec.step("cell_activity").f0 == 2.0 and spec.step("sensor").photons_per_unit == 50.0
    kinds = [s.kind for s in spec.steps]
    # extra steps land in canonical order, not at the end
    assert kinds.index("bleaching") == kinds.index("cell_activity") + 1
    assert kinds.index("vasculature") < kinds.index("brain_motion") < kinds.index("vignette")
    bare = build_spec(
        miniscope_v4(),
        ca1(),
        include_neuropil=False,
        include_vasculature=False,
        include_scope_fields=False,
    )
    assert [s.kind for s in bare.steps] == [
        "place_neurons",
        "cell_activity",
        "optics",
        "composite",
        "sensor",
    ]
    with pytest.raises(ValueError, match="sensor"):
        build_spec(miniscope_v4(), ca1(), extra_steps=[Sensor()])


def test_sweep_over_a_preset():
    spec = build_spec(miniscope_v4(), ca1(), duration_s=30.0, seed=0)
    axes = {"acquisition.optics.na": [0.3, 0.45], "steps.place_neurons.density_per_mm3": [2e4, 4e4]}
    variants = list(sweep(spec, axes))
    assert len(variants) == 4
    got = [
        (v.acquisition.optics.na, v.step("place_neurons").population_list()[0].density_per_mm3)
        for v in variants
    ]
    assert got == [(0.3, 2e4), (0.3, 4e4), (0.45, 2e4), (0.45, 4e4)]
    assert variants[0].axes == {
        "acquisition.optics.na": 0.3,
        "steps.place_neurons.density_per_mm3": 2e4,
    }
    assert variants[2].acquisition.optics.magnification == 2.9  # the rest untouched


def test_positions_round_trip_under_motion():
    positions = [(150.0, -20.0, 10.0), (145.0, 15.5, -30.25), (155.0, 0.0, 0.0)]
    spec = build_spec(
        generic_1p(),
        ca1(),
        duration_s=0.5,
        populations=[NeuronPopulation(positions_um=positions, soma_radius_um=5.0)],
        extra_steps=[BrainMotion(motion_amplitude_um=3.0, max_shift_um=4.0)],
    )
    gt = simulate(spec).ground_truth
    np.testing.assert_allclose(gt.centers_um.values, positions, atol=1e-6)
    assert gt.shifts.shape == (10, 2)


def test_v4_ca1_end_to_end():
    spec = build_spec(miniscope_v4(), ca1(), duration_s=0.5, seed=0)
    rec = simulate(spec)
    movie = rec.observed.values
    gt = rec.ground_truth
    assert movie.shape == (10, 608, 608) and movie.dtype == np.uint8
    # CA1 at 45 000/mm³ over the 1006² µm × 20 µm band: ≈ 911 cells
    expected = 45000 * (1006.34 / 1000) ** 2 * 0.02
    assert abs(gt.n_units - expected) < 5 * np.sqrt(expected)
    assert 140.0 <= gt.focal_depth_um <= 200.0  # auto focus near the cell band
    n_det = int(gt.detectable.values.sum())
    assert 0 < n_det < gt.n_units
    assert 10 < movie.mean() < 200 and movie.max() <= 255
    assert gt.vasculature_mask.shape == (608, 608) and gt.vasculature_mask.values.min() < 0.9
    assert float(gt.illumination.values.min()) == pytest.approx(0.7, abs=1e-3)
