"""Dropped frames: the recording is the full acquisition at the recorded frames, its
timestamps show the gaps, and the drop and jitter statistics are the declared ones."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from minisim import (
    BrainMotion,
    CellActivity,
    Composite,
    DroppedFrames,
    Neuropil,
    Output,
    PlaceNeurons,
    Sensor,
    Spec,
    SpecWarning,
    open_recording,
    simulate,
)

from .conftest import small_acquisition

ACQ = small_acquisition(px=32, duration_s=3.0)
CHAIN = [PlaceNeurons(), CellActivity(), Composite(), Neuropil(),
         BrainMotion(motion_amplitude_um=1.0), Sensor()]  # fmt: skip
DROPS = DroppedFrames(drop_probability=0.2, dropped=(5, 6, 7), timestamp_jitter_s=0.002)


def spec(*extra, steps=CHAIN, **kw) -> Spec:
    return Spec(acquisition=ACQ, seed=4, steps=[*steps, *extra], **kw)


def test_the_recording_is_the_full_acquisition_at_the_recorded_frames():
    full = simulate(spec(output=Output(save_intermediates=True)), chunks=-1).dataset.compute()
    dropped = simulate(spec(DROPS, output=Output(save_intermediates=True)), chunks=7)
    ds = dropped.dataset.compute()
    kept = ds["acquired_frame"].values
    assert 0 < len(kept) < ACQ.n_frames and kept[0] == 0
    assert ds.sizes["frame"] == len(kept) and np.array_equal(
        ds["frame"].values, np.arange(len(kept))
    )
    per_frame = [
        n for n in full.variables if "frame" in full[n].dims and n not in ("frame", "time_s")
    ]
    assert {"observed", "C", "S", "shift_y", "neuropil_temporal", "stage_sensor"} <= set(per_frame)
    for name in per_frame:
        expected = full[name].isel(frame=kept).values
        assert np.array_equal(ds[name].values, expected), name
    for name in ("A_observed", "centers_um", "neuropil_spatial"):  # nothing else changes
        assert np.array_equal(ds[name].values, full[name].values), name


def test_timestamps_show_the_gaps():
    ds = simulate(spec(DROPS)).dataset
    kept = ds["acquired_frame"].values
    time_s = ds["time_s"].values
    assert np.array_equal(time_s, kept / ACQ.fps)
    lost = sorted(set(range(ACQ.n_frames)) - set(kept))
    assert {5, 6, 7} <= set(lost)
    # Each gap between recorded frames is one frame period plus one per lost frame.
    gaps = np.rint(np.diff(time_s) * ACQ.fps).astype(int) - 1
    assert gaps.sum() == len(lost) - (ACQ.n_frames - 1 - kept[-1])
    assert gaps[np.searchsorted(kept, 8) - 1] >= 3  # 5, 6 and 7 lost before frame 8


def test_the_drop_rate_and_the_jitter_are_the_declared_ones():
    n, p = 200_000, 0.05
    kept = DroppedFrames(drop_probability=p).kept_frames(n, seed=9)
    lost = 1 - len(kept) / n
    assert abs(lost - p) < 5 * np.sqrt(p * (1 - p) / n)
    step = DroppedFrames(drop_probability=p, timestamp_jitter_s=0.003)
    exact, logged = step.timestamps(kept, 20.0, 9, n)
    error = logged - exact
    assert abs(error.mean()) < 5 * 0.003 / np.sqrt(len(kept))
    assert abs(error.std() - 0.003) < 5 * 0.003 / np.sqrt(2 * len(kept))
    # A frame's timestamp error does not depend on which other frames were lost.
    fewer = DroppedFrames(drop_probability=0.3, timestamp_jitter_s=0.003)
    kept2 = fewer.kept_frames(n, seed=9)
    both = np.intersect1d(kept, kept2)
    _, logged2 = fewer.timestamps(kept2, 20.0, 9, n)
    assert np.array_equal(
        logged[np.searchsorted(kept, both)], logged2[np.searchsorted(kept2, both)]
    )


def test_the_population_signal_follows_the_recorded_frames():
    # Noise-free, motionless: every frame is Σ_k A_k · C_k(t), so its pixel sum is
    # Σ_k (Σ_px A_k) · C_k at the recorded frame (the population signal).
    steps = [PlaceNeurons(), CellActivity(), Composite()]
    ds = simulate(spec(DroppedFrames(drop_probability=0.3), steps=steps), chunks=5).dataset
    ds = ds.compute()
    footprint_mass = ds["A_observed"].values.astype(float).sum(axis=(1, 2))
    expected = footprint_mass @ ds["C"].values.astype(float)
    movie_sum = ds["observed"].values.astype(float).sum(axis=(1, 2))
    assert np.allclose(movie_sum, expected, rtol=1e-4, atol=1e-3)
    assert np.std(expected) > 0  # the signal varies, so misalignment would show


def test_a_store_holds_the_recorded_frames(tmp_path):
    rec = simulate(spec(DROPS), chunks=7)
    rec.to_zarr(tmp_path / "drops.zarr")
    back = open_recording(tmp_path / "drops.zarr").dataset
    ds = rec.dataset.compute()
    for name in ("observed", "acquired_frame", "time_s", "timestamp_s", "C"):
        assert np.array_equal(back[name].values, ds[name].values), name


def test_bad_drops_fail_with_the_field_and_the_fix():
    with pytest.raises(ValidationError, match="frame 0.*always recorded"):
        DroppedFrames(dropped=(0, 3))
    with pytest.raises(ValidationError, match=r"dropped=\[60\].*\[1, 59\]"):
        spec(DroppedFrames(dropped=(60,)))
    with pytest.raises(ValidationError, match="drop_probability"):
        DroppedFrames(drop_probability=0.9)
    with pytest.warns(SpecWarning, match="timestamp_jitter_s=0.02"):
        spec(DroppedFrames(timestamp_jitter_s=0.02))
