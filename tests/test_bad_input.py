"""Bad input fails fast and clearly, before any work: a table of cases.

Every case names the field its message must contain. Errors must be raised (warnings
warned) in well under a second; the bound here is generous (the machine is shared) and
only guards against hangs and eager work, not speed.
"""

from __future__ import annotations

import copy
import json
import math
import time
import warnings

import pytest
from pydantic import BaseModel, ValidationError

from minisim import Spec, SpecWarning, simulate
from minisim.acquisition import Acquisition, ImageSensor, Optics, Tissue
from minisim.cli import UsageError, main
from minisim.errors import LimitError
from minisim.steps import VesselLayer, registered_steps
from minisim.steps.place_neurons import NeuronPopulation

FAST_S = 2.0  # "well under a second" with room for a loaded machine

BASE = {
    "acquisition": {
        "fps": 20.0,
        "duration_s": 2.0,
        "optics": {"magnification": 8.0},
        "image_sensor": {"n_px_height": 64, "n_px_width": 64, "pixel_pitch_um": 8.0},
    },
    "seed": 1,
    "steps": [
        {"kind": "place_neurons"},
        {"kind": "cell_activity"},
        {"kind": "bleaching"},
        {"kind": "optics"},
        {"kind": "composite"},
        {"kind": "neuropil"},
        {"kind": "brain_motion", "max_shift_um": 4.0, "motion_amplitude_um": 2.0},
        {"kind": "illumination_profile"},
        {"kind": "vignette"},
        {"kind": "leakage"},
        {"kind": "sensor"},
    ],
}


def spec_dict(**changes) -> dict:
    """BASE with dotted-path changes: ``acquisition.fps``, ``steps.sensor.photons_per_unit``;
    ``steps`` replaces the step list, ``drop`` removes kinds."""
    data = copy.deepcopy(BASE)
    if "steps" in changes:
        data["steps"] = copy.deepcopy(changes.pop("steps"))
    for kind in changes.pop("drop", ()):
        data["steps"] = [s for s in data["steps"] if s["kind"] != kind]
    for path, value in changes.items():
        parts = path.split("__")
        if parts[0] == "steps":
            target = next((s for s in data["steps"] if s["kind"] == parts[1]), None)
            if target is None:
                target = {"kind": parts[1]}
                data["steps"].append(target)
            parts = parts[2:]
        else:
            target = data
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return data


# --------------------------------------------------------------------------- non-finite


def _float_fields(model: type[BaseModel]):
    """(name, annotation) of every field holding floats, directly or nested in tuples."""
    for name, info in model.model_fields.items():
        if "float" in repr(info.annotation) and name != "kind":
            yield name, info.annotation


def _nonfinite_value(annotation, bad: float):
    text = repr(annotation)
    if "tuple[tuple[float, float, float]" in text:
        return [[10.0, 0.0, bad]]
    if "tuple[tuple[float, float]" in text:
        return [[0.0, bad]] * 40  # one per frame of BASE
    if "tuple[float, float]" in text or "tuple[typing.Annotated[float" in text:
        return [0.0, bad]
    return bad


MODEL_PATHS = [
    (Acquisition, "acquisition"),
    (Optics, "acquisition__optics"),
    (ImageSensor, "acquisition__image_sensor"),
    (Tissue, "acquisition__tissue"),
] + [(step, f"steps__{step.model_fields['kind'].default}") for step in registered_steps()]

NONFINITE = []
for model, prefix in MODEL_PATHS:
    for name, annotation in _float_fields(model):
        if model.__name__ == "PlaceNeurons" and name == "populations":
            continue
        for bad in (math.nan, math.inf, -math.inf):
            NONFINITE.append(
                pytest.param(
                    {f"{prefix}__{name}": _nonfinite_value(annotation, bad)},
                    name,
                    id=f"{prefix.split('__')[-1]}.{name}={bad}",
                )
            )


@pytest.mark.parametrize(("changes", "field"), NONFINITE)
def test_every_float_rejects_nan_and_inf(changes, field):
    start = time.perf_counter()
    with pytest.raises(ValidationError) as info:
        Spec.model_validate(spec_dict(**changes))
    assert time.perf_counter() - start < FAST_S
    assert field in str(info.value)
    assert "finite" in str(info.value) or field in str(info.value)


def test_nested_models_reject_nonfinite_floats():
    with pytest.raises(ValidationError, match="finite"):
        VesselLayer(depth_um=math.inf)
    with pytest.raises(ValidationError, match="finite"):
        NeuronPopulation(positions_um=[(1.0, math.nan, 0.0)])
    with pytest.raises(ValidationError, match="finite"):  # JSON: 1e999 parses as inf
        Spec.model_validate_json(json.dumps(BASE).replace('"fps": 20.0', '"fps": 1e999'))


# --------------------------------------------------------------------------- impossible

LAYER = {"root_radius_um": 5.0, "min_radius_um": 1.0}

ERRORS = [
    # acquisition and its hardware
    ({"acquisition__optics__na": 5.0}, "na"),
    ({"acquisition__optics__na": 1.34}, "na"),
    ({"acquisition__optics__emission_nm": 5.0}, "emission_nm"),
    ({"acquisition__optics__emission_nm": 1e6}, "emission_nm"),
    ({"acquisition__optics__magnification": 1e6}, "magnification"),
    ({"acquisition__optics__depth_of_field_um": 1e9}, "depth_of_field_um"),
    ({"acquisition__image_sensor__pixel_pitch_um": 1e5}, "pixel_pitch_um"),
    ({"acquisition__image_sensor__read_noise_e": 1e9}, "read_noise_e"),
    ({"acquisition__image_sensor__gain_adu_per_e": 1e30}, "gain_adu_per_e"),
    ({"acquisition__image_sensor__gain_adu_per_e": 300.0}, "gain_adu_per_e"),
    ({"acquisition__image_sensor__gain_adu_per_e": 1e-12}, "gain_adu_per_e"),
    ({"acquisition__image_sensor__n_px_height": 100_000}, "n_px_height"),
    ({"acquisition__image_sensor__n_px_width": 100_000}, "n_px_width"),
    ({"acquisition__image_sensor__n_px_width": 0}, "n_px_width"),
    ({"acquisition__image_sensor__bit_depth": 32}, "bit_depth"),
    ({"acquisition__image_sensor__quantum_efficiency": 1.5}, "quantum_efficiency"),
    ({"acquisition__tissue__scatter_mfp_emission_um": 1e-9}, "scatter_mfp_emission_um"),
    ({"acquisition__tissue__scatter_mfp_excitation_um": 0.01}, "scatter_mfp_excitation_um"),
    ({"acquisition__tissue__scatter_blur_per_um": 1e3}, "scatter_blur_per_um"),
    ({"acquisition__fps": 0.0}, "fps"),
    ({"acquisition__fps": -20.0}, "fps"),
    ({"acquisition__fps": 1e9}, "fps"),
    ({"acquisition__duration_s": 0.0}, "duration_s"),
    ({"acquisition__duration_s": 1e300}, "duration_s"),
    ({"acquisition__duration_s": 5e7}, "duration_s"),  # 10⁹ frames
    ({"acquisition__duration_s": 0.01}, "duration_s"),  # rounds to 0 frames
    ({"acquisition__focal_depth_in_tissue_um": 1e9}, "focal_depth_in_tissue_um"),
    ({"acquisition__focal_depth_in_tissue_um": -5.0}, "focal_depth_in_tissue_um"),
    ({"seed": -1}, "seed"),
    ({"acquisition__frame_rate": 20.0}, "frame_rate"),  # a typo is an error
    # place_neurons
    ({"steps__place_neurons__density_per_mm3": 1e9}, "density_per_mm3"),
    ({"steps__place_neurons__density_per_mm3": 2e6}, "density_per_mm3"),  # overfull
    ({"steps__place_neurons__density_per_mm3": -1.0}, "density_per_mm3"),
    ({"steps__place_neurons__depth_range_um": [0.0, 1e9]}, "depth_range_um"),
    ({"steps__place_neurons__depth_range_um": [200.0, 100.0]}, "depth_range_um"),
    ({"steps__place_neurons__depth_range_um": [-5.0, 100.0]}, "depth_range_um"),
    ({"steps__place_neurons__soma_radius_um": 1e6}, "soma_radius_um"),
    ({"steps__place_neurons__soma_radius_um": 40.0}, "soma_radius_um"),  # wider than field
    ({"steps__place_neurons__dendrite_length_um": 1e6}, "dendrite_length_um"),
    ({"steps__place_neurons__dendrite_width_um": 1e4}, "dendrite_width_um"),
    ({"steps__place_neurons__irregularity": 2.0}, "irregularity"),
    ({"steps__place_neurons__positions_um": [[1e9, 0.0, 0.0]]}, "positions_um"),
    ({"steps__place_neurons__positions_um": [[10.0, 1e9, 0.0]]}, "positions_um"),
    ({"steps__place_neurons__positions_um": [[-1.0, 0.0, 0.0]]}, "positions_um"),
    ({"steps__place_neurons__populations": []}, "populations"),
    (
        {"steps__place_neurons__populations": [{"density_per_mm3": 1e9}]},
        "density_per_mm3",
    ),
    (
        {
            "steps__place_neurons__density_per_mm3": 2e5,
            "acquisition__image_sensor__n_px_height": 4096,
            "acquisition__image_sensor__n_px_width": 4096,
            "steps__place_neurons__min_distance_um": 1.0,
        },
        "min_distance_um",
    ),  # fmt: skip
    (
        {
            "acquisition__image_sensor__n_px_height": 12000,
            "acquisition__image_sensor__n_px_width": 12000,
        },
        "density_per_mm3",
    ),  # fmt: skip  (720 000 cells)
    (
        {
            "acquisition__image_sensor__n_px_height": 16384,
            "acquisition__image_sensor__n_px_width": 16384,
        },
        "n_px_height",
    ),  # fmt: skip  (the canvas with its motion margin exceeds 2²⁸ px)
    # cell_activity
    ({"steps__cell_activity__active_rate_hz": 5000.0}, "active_rate_hz"),
    ({"steps__cell_activity__active_rate_hz": 900.0}, "active_rate_hz"),  # > the 300 Hz grid
    ({"steps__cell_activity__quiescent_rate_hz": 600.0}, "quiescent_rate_hz"),
    ({"steps__cell_activity__spike_sim_hz": 1e9}, "spike_sim_hz"),
    ({"steps__cell_activity__brightness_cv": 1e6}, "brightness_cv"),
    ({"steps__cell_activity__tau_decay_s": 1e9}, "tau_decay_s"),
    ({"steps__cell_activity__tau_decay_s": 0.01}, "tau_decay_s"),  # unresolvable at 20 fps
    ({"steps__cell_activity__tau_rise_s": 1e-12}, "tau_rise_s"),
    ({"steps__cell_activity__tau_rise_s": 2.0}, "tau_rise_s"),  # slower than the decay
    ({"steps__cell_activity__f0": 1e30}, "f0"),
    ({"steps__cell_activity__trace_noise": 1e30}, "trace_noise"),
    ({"steps__cell_activity__p_quiescent_to_active": 1.5}, "p_quiescent_to_active"),
    ({"steps__cell_activity__p_active_to_quiescent": 0.0}, "p_active_to_quiescent"),
    # bleaching
    ({"steps__bleaching__bleach_susceptibility": 1e30}, "bleach_susceptibility"),
    ({"steps__bleaching__turnover_tau_s": 0.0}, "turnover_tau_s"),
    # neuropil
    ({"steps__neuropil__n_components": 100_000}, "n_components"),
    ({"steps__neuropil__n_components": 0}, "n_components"),
    ({"steps__neuropil__amplitude": 1e30}, "amplitude"),
    ({"steps__neuropil__spatial_sigma_um": 1e9}, "spatial_sigma_um"),
    ({"steps__neuropil__population_coupling": 2.0}, "population_coupling"),
    # vasculature
    (
        {
            "steps__vasculature__enabled": True,
            "steps__vasculature__layers": [{**LAYER, "root_radius_um": 1e6}],
        },
        "root_radius_um",
    ),  # fmt: skip
    (
        {
            "steps__vasculature__enabled": True,
            "steps__vasculature__layers": [{**LAYER, "depth_um": 1e9}],
        },
        "depth_um",
    ),  # fmt: skip
    (
        {
            "steps__vasculature__enabled": True,
            "steps__vasculature__layers": [{**LAYER, "tortuosity_deg": 1e4}],
        },
        "tortuosity_deg",
    ),  # fmt: skip
    (
        {
            "steps__vasculature__enabled": True,
            "steps__vasculature__layers": [{**LAYER, "min_radius_um": 9.0}],
        },
        "min_radius_um",
    ),  # fmt: skip
    (
        {
            "steps__vasculature__enabled": True,
            "steps__vasculature__layers": [{**LAYER, "branch_area_main": 0.2}],
        },
        "branch_area_main",
    ),  # fmt: skip
    # brain_motion
    ({"steps__brain_motion__max_shift_um": 1e9}, "max_shift_um"),
    ({"steps__brain_motion__motion_amplitude_um": 10.0}, "motion_amplitude_um"),  # > max
    ({"steps__brain_motion__locomotion_freq_hz": 1e6}, "locomotion_freq_hz"),
    ({"steps__brain_motion__resonance_freq_hz": 1e6}, "resonance_freq_hz"),
    ({"steps__brain_motion__damping_ratio": 1e4}, "damping_ratio"),
    ({"steps__brain_motion__trajectory_um": [[0.0, 0.0]] * 39 + [[1e6, 0.0]]}, "trajectory_um"),
    ({"steps__brain_motion__trajectory_um": [[0.0, 0.0]] * 3}, "trajectory_um"),  # length
    ({"steps__brain_motion__locomotion_axis": "z"}, "locomotion_axis"),
    ({"steps__brain_motion__nonrigid_um": -1.0}, "nonrigid_um"),
    ({"steps__brain_motion__nonrigid_um": 50.0}, "nonrigid_um"),  # folds: > scale / 10
    ({"steps__brain_motion__nonrigid_scale_um": 0.0}, "nonrigid_scale_um"),
    (
        {"steps__brain_motion__nonrigid_um": 0.2, "steps__brain_motion__nonrigid_scale_um": 2.0},
        "nonrigid_scale_um",
    ),  # nodes 2 px apart
    ({"steps__brain_motion__nonrigid_drift_s": 0.0}, "nonrigid_drift_s"),
    ({"steps__brain_motion__nonrigid_coupling": 1.5}, "nonrigid_coupling"),
    # scope fields and sensor
    ({"steps__illumination_profile__center_offset_um": [1e9, 0.0]}, "center_offset_um"),
    ({"steps__vignette__center_offset_um": [0.0, -2e4]}, "center_offset_um"),
    ({"steps__vignette__exponent": 1e6}, "exponent"),
    ({"steps__illumination_profile__falloff": 1.5}, "falloff"),
    ({"steps__leakage__level": 1e30}, "level"),
    ({"steps__leakage__sigma_um": 0.0}, "sigma_um"),
    ({"steps__sensor__photons_per_unit": 1e30}, "photons_per_unit"),
    ({"steps__sensor__gain_adu_per_e": 2.0}, "gain_adu_per_e"),  # belongs on image_sensor
    # pipelines that can only be empty or cannot build
    ({"drop": ["place_neurons"]}, "place_neurons"),
    ({"steps": [{"kind": "cell_activity"}]}, "place_neurons"),
    ({"steps": [{"kind": "optics"}]}, "place_neurons"),
    ({"steps": [{"kind": "place_neurons"}, {"kind": "bleaching"}]}, "cell_activity"),
    (
        {"steps": [{"kind": "vasculature", "enabled": True, "layers": [LAYER]}]},
        "place_neurons",
    ),
    ({"steps": [{"kind": "sensor"}, {"kind": "sensor"}]}, "sensor"),
    ({"steps": [{"kind": "teleport"}]}, "teleport"),
]


@pytest.mark.parametrize(("changes", "field"), ERRORS, ids=[f for _, f in ERRORS])
def test_impossible_values_are_rejected(changes, field):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpecWarning)
        with pytest.raises(ValueError) as info:  # pydantic's ValidationError is a ValueError
            Spec.model_validate(spec_dict(**changes))
    assert time.perf_counter() - start < FAST_S
    assert field in str(info.value)


# --------------------------------------------------------------------------- odd: warn

WARNINGS = [
    ({"acquisition__optics__na": 1.2}, "na"),
    ({"acquisition__image_sensor__read_noise_e": 500.0}, "read_noise_e"),
    ({"steps__place_neurons__soma_radius_um": 0.5}, "soma_radius_um"),
    ({"steps__place_neurons__density_per_mm3": 5e5}, "density_per_mm3"),  # 72 % packed
    ({"steps__place_neurons__positions_um": [[10.0, 5e3, 0.0], [20.0, 0.0, -5e3]]}, "positions_um"),
    ({"steps__cell_activity__brightness_cv": 5.0}, "brightness_cv"),
    ({"steps__cell_activity__quiescent_rate_hz": 200.0}, "quiescent_rate_hz"),
    ({"steps__neuropil__amplitude": 500.0}, "amplitude"),
    ({"steps__leakage__level": 500.0}, "level"),
    ({"steps__illumination_profile__center_offset_um": [500.0, 0.0]}, "center_offset_um"),
    ({"steps__sensor__photons_per_unit": 1e5}, "photons_per_unit"),
    ({"steps__brain_motion__locomotion_freq_hz": 15.0}, "locomotion_freq_hz"),
    (
        {"steps__brain_motion__model": "walk", "steps__brain_motion__walk_step_um": 10.0},
        "walk_step_um",
    ),
    ({"steps__vasculature__enabled": True}, "layers"),
    ({"steps__vasculature__layers": [LAYER]}, "enabled"),
    ({"drop": ["composite"]}, "composite"),
    ({"drop": ["cell_activity", "bleaching"]}, "cell_activity"),
    ({"acquisition__focal_depth_in_tissue_um": 500.0}, "focal_depth_in_tissue_um"),
    ({"steps__brain_motion__motion_amplitude_um": 4.0}, "motion_amplitude_um"),  # 6 % of field
]


@pytest.mark.parametrize(("changes", "field"), WARNINGS, ids=[f for _, f in WARNINGS])
def test_odd_values_warn(changes, field):
    start = time.perf_counter()
    with pytest.warns(SpecWarning) as record:
        Spec.model_validate(spec_dict(**changes))
    assert time.perf_counter() - start < FAST_S
    assert any(field in str(w.message) for w in record), [str(w.message) for w in record]


def test_base_spec_is_quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Spec.model_validate(spec_dict())


# --------------------------------------------------------------------------- machine

MACHINE = [
    # 10⁶ frames in chunks of one frame: a million-chunk graph
    ({"acquisition__duration_s": 50_000.0, "acquisition__fps": 20.0}, 1, "chunks"),
    # 1000 components on a 16384² canvas: terabytes held while building
    (
        {
            "acquisition__image_sensor__n_px_height": 16384,
            "acquisition__image_sensor__n_px_width": 16384,
            "steps__neuropil__n_components": 1000,
            "drop": ["place_neurons", "cell_activity", "bleaching", "optics", "brain_motion"],
            "steps": None,
        },
        None,
        "n_components",
    ),  # fmt: skip
]


@pytest.mark.parametrize(("changes", "chunks", "field"), MACHINE, ids=["chunks", "memory"])
def test_simulate_refuses_what_the_machine_cannot_build(changes, chunks, field):
    changes = dict(changes)
    drop = changes.pop("drop", ())
    if changes.pop("steps", 0) is None:
        changes["steps"] = [s for s in BASE["steps"] if s["kind"] not in drop]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpecWarning)
        spec = Spec.model_validate(spec_dict(**changes))
    start = time.perf_counter()
    with pytest.raises(LimitError) as info:
        simulate(spec, chunks=chunks)
    assert time.perf_counter() - start < FAST_S
    assert field in str(info.value)


def test_size_estimate_counts_cells_frames_and_bytes():
    from minisim.limits import estimate

    spec = Spec.model_validate(spec_dict())
    size = estimate(spec)
    assert size.n_frames == 40
    assert size.fov_shape == (64, 64)
    assert size.canvas_shape == (64 + 2 * 5, 64 + 2 * 5)  # ceil(4 µm / 1 µm) + 1 margin
    # 25000/mm³ × (0.074 mm)² × 0.2 mm
    assert size.n_cells == round(25000 * 0.074**2 * 0.2)
    assert size.eager_bytes["canvas fields"] == 74 * 74 * 8 * 2 * 3
    assert size.total_eager_bytes == sum(size.eager_bytes.values())


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def spec_file(tmp_path):
    def write(data, name="spec.json"):
        path = tmp_path / name
        path.write_text(data if isinstance(data, str) else json.dumps(data))
        return str(path)

    return write


CLI = [
    (lambda f, t: ["run", f(spec_dict(acquisition__optics__na=5.0)), "-o", t], "na"),
    (lambda f, t: ["run", f(spec_dict(acquisition__fps=-1.0)), "-o", t], "fps"),
    (lambda f, t: ["run", f(spec_dict(acquisition__duration_s=5e7)), "-o", t], "duration_s"),
    (lambda f, t: ["run", f(json.dumps(BASE).replace("20.0", "1e999", 1)), "-o", t], "fps"),
    (lambda f, t: ["run", f("{not json"), "-o", t], "invalid spec"),
    (lambda f, t: ["run", f({"steps": [{"kind": "cell_activity"}]}), "-o", t], "place_neurons"),
    (lambda f, t: ["run", f(spec_dict()) + ".missing", "-o", t], "cannot read"),
    (lambda f, t: ["run", f(spec_dict()), "-o", t, "--chunks", "0"], "--chunks"),
    (lambda f, t: ["run", f(spec_dict()), "-o", t, "--chunks", "-5"], "--chunks"),
    (lambda f, t: ["run", f(spec_dict()), "-o", t, "--chunks", "two"], "--chunks"),
    (lambda f, t: ["run", f(spec_dict()), "-o", t, "--until", "nowhere"], "nowhere"),
    (lambda f, t: ["video", f(spec_dict()), "-o", t + ".avi", "--fps", "0"], "--fps"),
    (lambda f, t: ["video", f(spec_dict()), "-o", t + ".avi", "--fps", "inf"], "--fps"),
    (lambda f, t: ["video", f(spec_dict()), "-o", t + ".avi", "--vmin", "9", "--vmax", "3"], "--vmin"),
    (lambda f, t: ["video", f(spec_dict()), "-o", t + ".avi", "--vmax", "nan"], "--vmax"),
    (lambda f, t: ["dataset", f(spec_dict()), "-o", t, "--axis", "seed=1,2", "--axis", "seed=3"], "seed"),
    (lambda f, t: ["dataset", f(spec_dict()), "-o", t, "--axis", "seed=1,2,1"], "seed"),
    (lambda f, t: ["dataset", f(spec_dict()), "-o", t, "--axis", "seed"], "--axis"),
    (lambda f, t: ["dataset", f(spec_dict()), "-o", t, "--axis", "acquisition.optics.na=0.3,7"], "na"),
    (lambda f, t: ["dataset", f(spec_dict()), "-o", t, "--axis", "steps.nothing.x=1"], "nothing"),
    (lambda f, t: ["demo", "--px", "0"], "--px"),
    (lambda f, t: ["demo", "--duration", "-1"], "--duration"),
    (lambda f, t: ["info", t + "/absent"], "absent"),
    (lambda f, t: ["teleport"], "teleport"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "needle"), CLI, ids=[n for _, n in CLI])
def test_cli_failures_are_one_line(args, needle, spec_file, tmp_path, capsys):
    argv = args(spec_file, str(tmp_path / "out"))
    start = time.perf_counter()
    code = main(argv)
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code != 0
    assert elapsed < FAST_S + 3  # the CLI also imports dask and xarray
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert needle in err
    assert not (tmp_path / "out").exists()  # nothing was written


def test_cli_debug_shows_the_traceback(spec_file, tmp_path):
    with pytest.raises(UsageError, match="na=5"):
        main(["--debug", "run", spec_file(spec_dict(acquisition__optics__na=5.0)), "-o",
              str(tmp_path / "out")])  # fmt: skip


def test_cli_bad_input_subprocess_prints_no_traceback(spec_file, tmp_path):
    import subprocess
    import sys

    path = spec_file(spec_dict(steps__cell_activity__brightness_cv=1e6))
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from minisim.cli import main; sys.exit(main())",
            "run",
            path,
            "-o",
            str(tmp_path / "o"),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "brightness_cv" in result.stderr


def test_table_has_at_least_100_cases():
    total = len(NONFINITE) + len(ERRORS) + len(WARNINGS) + len(MACHINE) + len(CLI)
    assert total >= 100, total
