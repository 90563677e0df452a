"""Dropped frames: the DAQ loses frames, the movie skips in time, the timestamps show it.

Rung 6 (the full recording) with ``DroppedFrames(drop_probability=0.05)``. The mean count
of every recorded frame against its ``time_s`` (dots), over the same recording without
drops (line): each recorded frame sits on the full acquisition at its time, and the lost
frames (red ticks, the indices missing from ``acquired_frame``) leave gaps.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from minisim import DroppedFrames, Spec, SpecWarning, simulate

from ._common import rung_spec, save


def main(out_dir: Path, small: bool = False) -> list[Path]:
    full_spec = rung_spec(6, small)
    with warnings.catch_warnings():  # the small field's motion warning, as in rung_spec
        warnings.simplefilter("ignore", SpecWarning)
        spec = Spec(acquisition=full_spec.acquisition, seed=full_spec.seed,
                    steps=[*full_spec.steps, DroppedFrames(drop_probability=0.05)])  # fmt: skip
    full = simulate(full_spec).observed.mean(("y", "x")).compute()
    ds = simulate(spec).dataset
    signal = ds["observed"].mean(("y", "x")).compute()
    kept = ds["acquired_frame"].values
    lost = np.setdiff1d(np.arange(full_spec.acquisition.n_frames), kept)

    fig, ax = plt.subplots(figsize=(14, 4.5), layout="constrained")
    ax.plot(full["time_s"], full, color="0.6", linewidth=1, label="full acquisition")
    ax.plot(signal["time_s"], signal, ".", markersize=4, label="recorded frames (time_s)")
    for t in lost / full_spec.acquisition.fps:
        ax.axvline(t, color="tab:red", alpha=0.5, linewidth=0.8)
    ax.plot([], [], color="tab:red", label=f"lost frames ({len(lost)})")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mean count of the frame (ADU)")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(f"{len(kept)} of {full_spec.acquisition.n_frames} frames recorded; every "
                 "recorded frame is the full acquisition's frame acquired_frame", fontsize=10)  # fmt: skip
    return [save(fig, out_dir, "dropped_frames.png", small)]
