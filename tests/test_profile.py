"""The per-step profile: every step of a full chain timed, the bare graph when not asked."""

from __future__ import annotations

import dask
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
    Neuropil,
    PlaceNeurons,
    Sensor,
    Spec,
    Vignette,
    open_recording,
    simulate,
)
from minisim.cli import main
from minisim.engine.profile import Timed, profiling, run_profiled

from .conftest import small_acquisition

FULL = Spec(
    acquisition=small_acquisition(px=96, duration_s=6.0),
    seed=5,
    steps=[PlaceNeurons(), CellActivity(), Bleaching(), CellOptics(), Composite(), Neuropil(),
           BrainMotion(motion_amplitude_um=2.0), IlluminationProfile(), Vignette(), Leakage(),
           Sensor()],
)  # fmt: skip


def _graph(rec):
    return dict(rec.dataset.__dask_graph__())


def _holds_timed(value) -> bool:
    """Is a Timed kernel anywhere in this graph node (nested tasks, subgraphs, args)?"""
    if isinstance(value, Timed):
        return True
    if isinstance(value, (tuple, list)):
        return any(_holds_timed(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_timed(v) for v in value.values())
    func = getattr(value, "func", None)
    return func is not None and (_holds_timed(func) or _holds_timed(getattr(value, "args", ())))


def test_profile_times_every_step_and_sums_to_the_wall_time(tmp_path):
    rec = simulate(FULL, chunks=40)
    with dask.config.set(scheduler="synchronous"):
        profile = rec.profile(tmp_path / "profiled.zarr")
    kinds = [step.kind for step in FULL.steps]
    assert list(profile.seconds)[: len(kinds)] == kinds
    assert list(profile.seconds)[len(kinds) :] == ["writing", "ground truth", "other"]
    for kind in (*kinds, "writing", "ground truth"):
        assert profile.seconds[kind] > 0, kind
    # Every task's time is counted once: on one thread the rows add up to the wall time,
    # less what no kernel accounts for (graph building outside steps, dask's own work).
    assert 0.5 * profile.wall_s < profile.total_s <= 1.01 * profile.wall_s
    assert profile.threads == 1
    frame = profile.to_frame()
    assert frame["share"].sum() == pytest.approx(1.0)
    assert frame.loc["sensor", "calls"] >= 3  # one per chunk, at least
    text = str(profile)
    assert all(kind in text for kind in kinds) and "wall time" in text
    # The profiled write is the real write: same bytes as the recording.
    assert np.array_equal(open_recording(tmp_path / "profiled.zarr").observed.values,
                          rec.observed.values)  # fmt: skip


def test_profile_with_threads_cleans_up_its_temporary_store(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    rec = simulate(FULL, until="composite")
    with dask.config.set(scheduler="threads", num_workers=2):
        profile = rec.profile()
    assert profile.threads == 2
    assert list(profile.seconds)[:5] == [s.kind for s in FULL.steps[:5]]
    assert profile.seconds["composite"] > 0
    assert list(tmp_path.iterdir()) == []  # the temporary store is gone


def test_without_profiling_the_graph_holds_the_bare_kernels():
    plain = _graph(simulate(FULL))
    again = _graph(simulate(FULL))
    with profiling():
        timed = _graph(simulate(FULL))
    assert plain.keys() == again.keys() == timed.keys()
    assert not any(_holds_timed(node) for node in plain.values())
    assert any(_holds_timed(node) for node in timed.values())  # the check can fail


def test_nested_times_are_exclusive():
    import time

    def inner():
        time.sleep(0.05)

    def outer():
        time.sleep(0.05)
        Timed(inner, "b")()

    class One:
        def __dask_graph__(self):
            return {("a-x",): (outer,)}

        def __dask_keys__(self):
            return [("a-x",)]

    with dask.config.set(scheduler="synchronous"):
        profile = run_profiled(One, steps=["a", "b"])
    assert profile.seconds["a"] == pytest.approx(0.05, abs=0.03)
    assert profile.seconds["b"] == pytest.approx(0.05, abs=0.03)
    assert profile.total_s <= profile.wall_s


def test_cli_run_profile(tmp_path, capsys):
    spec_file = tmp_path / "spec.json"
    spec = Spec(acquisition=FULL.acquisition, seed=5, steps=list(FULL.steps[:5]))
    spec_file.write_text(spec.model_dump_json())
    store = tmp_path / "rec.zarr"
    assert main(["run", str(spec_file), "-o", str(store), "--profile", "--scheduler", "sync"]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "composite" in out and "writing" in out and "wall time" in out
    assert open_recording(store).observed.shape[0] == FULL.acquisition.n_frames
    assert main(["run", str(spec_file), "-o", str(store), "--profile", "--resume"]) == 2
