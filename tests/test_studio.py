"""The studio's logic without a browser: controls ↔ spec, previews, generation, refusals."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("panel")

from minisim import open_recording, simulate  # noqa: E402
from minisim.cli import main  # noqa: E402
from minisim.explore import studio as studio_module  # noqa: E402
from minisim.explore.studio import Studio, default_spec  # noqa: E402

from .conftest import small_acquisition  # noqa: E402


@pytest.fixture(scope="module")
def studio():
    spec = default_spec().model_copy(
        update={"acquisition": small_acquisition(px=48, duration_s=2.0)}
    )
    return Studio(spec, window_px=48)


def test_controls_round_trip_the_spec(studio):
    assert studio.current_spec() == studio.base
    assert studio.frame.end == studio.base.acquisition.n_frames - 1
    assert "Spec(" in studio.python_code.value
    assert "uncompressed" in studio.size_info.object


def test_a_frame_change_redraws_the_frame(studio):
    before = studio.frame_image.object
    studio.frame.value = 25
    studio.show_frame()
    assert studio.frame_image.object != before
    assert "frame 25" in studio.status.object


def test_a_physics_change_rebuilds_the_preview(studio):
    old_preview, old_image = studio.preview, studio.frame_image.object
    studio.na.value = 0.8
    studio.refresh()
    assert studio.current_spec().acquisition.optics.na == 0.8
    assert studio.preview is not old_preview and studio.frame_image.object != old_image
    studio.steps.value = [s for s in studio.steps.value if s != "brain_motion"]
    studio.refresh()
    assert studio.current_spec().step("brain_motion") is None
    studio.na.value = 0.45


def test_an_invalid_combination_is_reported_not_raised(studio):
    studio.tau_rise.value, studio.tau_decay.value = 0.4, 0.2
    studio.refresh()
    assert "Invalid spec" in studio.status.object and "tau_rise_s" in studio.status.object
    studio.tau_rise.value, studio.tau_decay.value = 0.05, 0.5
    studio.refresh()


def test_generate_writes_a_store_equal_to_the_spec(studio, tmp_path):
    spec = studio.current_spec()
    job = studio.generate(spec, str(tmp_path / "out.zarr"))
    assert job["error"] is None and "out.zarr" in studio.summary.object
    stored = open_recording(tmp_path / "out.zarr")
    np.testing.assert_array_equal(stored.observed.values, simulate(spec).observed.values)
    assert studio.progress.value == 100


def test_generate_never_replaces_a_users_files(studio, tmp_path):
    mine = tmp_path / "mine.zarr"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    job = studio.generate(studio.current_spec(), str(mine))
    assert job["error"] is not None and "failed" in studio.summary.object
    assert (mine / "notes.txt").read_text() == "precious"


def test_presets_load_their_values(studio):
    studio.preset.value = "Miniscope V4 + CA1"
    spec = studio.current_spec()
    assert spec.acquisition.optics.na == 0.3
    assert spec.step("place_neurons").density_per_mm3 == 45000.0
    assert spec.step("vasculature") is not None


def test_explore_without_the_extra_prints_one_line(monkeypatch, capsys):
    def missing():
        raise ImportError(studio_module.INSTALL_HINT)

    monkeypatch.setattr(studio_module, "require_panel", missing)
    assert main(["explore", "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "minisim[explore]"' in err
