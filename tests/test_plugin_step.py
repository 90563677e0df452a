"""A step from another package: pip-installed, it works wherever a built-in step does."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[1] / "examples" / "plugin_step"

CHECK = textwrap.dedent(
    """
    import json, subprocess, sys
    import numpy as np
    import minisim
    from minisim import open_recording, simulate, sweep, Spec
    from minisim.steps import registered_steps

    assert "flicker" in [c.kind_name() for c in registered_steps()]
    base = json.loads(sys.argv[1])
    with_flicker = dict(base, steps=base["steps"] + [
        {"kind": "flicker", "amplitude": 0.25, "frequency_hz": 2.0}])
    spec = Spec.model_validate_json(json.dumps(with_flicker))      # from JSON
    assert [s.kind for s in spec.steps][-1] == "flicker"            # sorted by its order
    rec = simulate(spec, chunks=7)
    plain = simulate(Spec.model_validate(base), chunks=7)
    t = np.arange(rec.observed.shape[0]) / spec.acquisition.fps
    expected = (1 + 0.25 * np.sin(2 * np.pi * 2.0 * t)).astype(np.float32)
    gain = rec.dataset["flicker"].values
    assert np.allclose(gain, expected, rtol=0, atol=1e-6), abs(gain - expected).max()
    movie, before = rec.observed.values, plain.observed.values
    assert np.array_equal(movie, before * gain[:, None, None])     # the movie is multiplied
    assert np.array_equal(movie, simulate(spec, chunks=3).observed.values)  # chunk-invariant

    rec.to_zarr(sys.argv[2])                                        # stores
    back = open_recording(sys.argv[2])
    assert np.array_equal(back.dataset["flicker"].values, gain)
    assert back.spec == spec
    swept = list(sweep(spec, {"steps.flicker.amplitude": [0.0, 0.5]}))   # sweeps
    assert [s.step("flicker").amplitude for s in swept] == [0.0, 0.5]
    # The conformance checks, as the plugin's own test suite would run them (here too in a
    # fresh environment, where the plugin was not installed when pytest collected).
    from minisim.conformance import StepConformance
    from minisim_flicker import Flicker

    class FlickerConformance(StepConformance):
        step = Flicker(amplitude=0.1)

    checks = FlickerConformance()
    names = [name for name in dir(checks) if name.startswith("test_")]
    assert len(names) >= 5, names
    for name in names:
        getattr(checks, name)()
    print("plugin ok")
    """
)


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    # Installed from a copy: building writes build/ and *.egg-info next to the sources,
    # and a stray egg-info in the checkout would register the step for any process
    # started there.
    source = tmp_path_factory.mktemp("plugin") / "plugin_step"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", str(source)],
        capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.fail(f"pip could not install the example plugin:\n{result.stderr}")
    return PLUGIN


def test_a_pip_installed_plugin_step_runs_from_json_in_stores_and_sweeps(
    installed_plugin, tmp_path
):
    base = {
        "acquisition": {"fps": 20.0, "duration_s": 1.0, "optics": {"magnification": 8.0},
                        "image_sensor": {"n_px_height": 32, "n_px_width": 32, "pixel_pitch_um": 8.0}},
        "seed": 2,
        "steps": [{"kind": "place_neurons"}, {"kind": "cell_activity"}, {"kind": "composite"},
                  {"kind": "leakage"}],
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", CHECK, json.dumps(base), str(tmp_path / "rec.zarr")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "plugin ok" in done.stdout


def test_the_cli_runs_a_spec_file_that_uses_the_plugin(installed_plugin, tmp_path):
    spec = {
        "acquisition": {"fps": 20.0, "duration_s": 1.0, "optics": {"magnification": 8.0},
                        "image_sensor": {"n_px_height": 32, "n_px_width": 32, "pixel_pitch_um": 8.0}},
        "steps": [{"kind": "place_neurons"}, {"kind": "cell_activity"}, {"kind": "composite"},
                  {"kind": "flicker", "amplitude": 0.1}, {"kind": "sensor"}],
    }  # fmt: skip
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    run = subprocess.run(
        [sys.executable, "-m", "minisim.cli", "run", str(path), "-o", str(tmp_path / "r.zarr")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    info = subprocess.run([sys.executable, "-m", "minisim.cli", "info", str(tmp_path / "r.zarr")],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert "flicker" in info.stdout
