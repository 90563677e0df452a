"""The command line: every subcommand end to end, and clear errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from minisim import CellActivity, Composite, PlaceNeurons, Sensor, Spec, open_recording, simulate
from minisim.cli import main
from minisim.io.video import read_video

from .conftest import small_acquisition

SPEC = Spec(acquisition=small_acquisition(px=32, duration_s=1.0), seed=3,
            steps=[PlaceNeurons(), CellActivity(), Composite(), Sensor()])  # fmt: skip


def write_spec(tmp_path, spec=SPEC):
    path = tmp_path / "spec.json"
    path.write_text(spec.model_dump_json(indent=2))
    return path


@pytest.mark.filterwarnings("ignore:Motion extent:minisim.SpecWarning")  # a small demo field
def test_demo_prints_a_summary(capsys):
    assert main(["demo", "--duration", "1", "--px", "48", "--scheduler", "sync"]) == 0
    out = capsys.readouterr().out
    assert "20 frames of 48×48 px" in out and "detectable" in out


def test_run_then_info(tmp_path, capsys):
    spec_file = write_spec(tmp_path)
    store = tmp_path / "rec.zarr"
    assert (
        main(["run", str(spec_file), "-o", str(store), "--chunks", "7", "--scheduler", "sync"]) == 0
    )
    rec = open_recording(store)
    assert np.array_equal(rec.observed.values, simulate(SPEC).observed.values)
    assert main(["info", str(store)]) == 0
    out = capsys.readouterr().out
    assert SPEC.cache_key() in out and "place_neurons" in out and "chunks of 7 frames" in out


def test_video(tmp_path):
    spec_file = write_spec(tmp_path)
    out = tmp_path / "rec.avi"
    assert main(["video", str(spec_file), "-o", str(out)]) == 0
    assert np.array_equal(read_video(out), simulate(SPEC).observed.values)


def test_dataset(tmp_path, capsys):
    spec_file = write_spec(tmp_path)
    archive = tmp_path / "archive"
    args = ["dataset", str(spec_file), "--axis", "seed=0,1", "--axis", "acquisition.optics.na=0.3,0.45",
            "-o", str(archive), "--scheduler", "sync"]  # fmt: skip
    assert main(args) == 0
    manifest = json.loads((archive / "manifest.json").read_text())
    assert len(manifest["recordings"]) == 4
    assert {tuple(r["axes"].values()) for r in manifest["recordings"]} == {
        (0, 0.3),
        (0, 0.45),
        (1, 0.3),
        (1, 0.45),
    }
    for entry in manifest["recordings"]:
        assert open_recording(archive / entry["store"]).spec.cache_key() == entry["cache_key"]


def test_bad_spec_file_exits_2_and_names_the_field(tmp_path, capsys):
    data = json.loads(SPEC.model_dump_json())
    data["acquisition"]["fps"] = -5
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    assert main(["run", str(bad), "-o", str(tmp_path / "x.zarr")]) == 2
    err = capsys.readouterr().err
    assert "acquisition.fps" in err and "greater than 0" in err
    assert main(["run", str(tmp_path / "missing.json"), "-o", str(tmp_path / "x.zarr")]) == 2
    assert main(["info", str(tmp_path / "nothing.zarr")]) == 2
    assert (
        main(["dataset", str(write_spec(tmp_path)), "--axis", "seed", "-o", str(tmp_path / "a")])
        == 2
    )


def test_console_script_help():
    out = subprocess.run(
        [sys.executable, "-m", "minisim.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "minisim run spec.json -o rec.zarr" in out
