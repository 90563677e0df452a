"""Ladder rung 3, brain motion: the rigid (dy, dx) shift of every frame, from ground truth.

Left: the two components of the applied shift against time (a positive dy moves the
image content down, a positive dx moves it right; motion correction applies the
negation). Right: the same shifts as a path in the image plane, y pointing down as in
the movie, coloured by time, with the circle the 99th percentile of the displacement
radius lies on (the model is scaled so that it equals ``motion_amplitude_um``).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Circle

from minisim import simulate

from ._common import rung_spec, save

#: Length of the zoomed strip under the full trace (s).
ZOOM_S = 2.0


def main(out_dir: Path, small: bool = False) -> list[Path]:
    spec = rung_spec(3, small)
    motion = spec.steps[-1]
    px_um = spec.acquisition.pixel_size_um
    rec = simulate(spec)
    gt = rec.ground_truth

    shifts = gt.shifts.values  # (frame, [dy, dx]) px; only the motion scan is computed
    time_s = rec.observed.time_s.values
    dy, dx = shifts[:, 0], shifts[:, 1]
    radius = np.hypot(dy, dx)
    p99 = float(np.percentile(radius, 99))

    fig = plt.figure(figsize=(15, 6.2), layout="constrained")
    grid = fig.add_gridspec(2, 2, width_ratios=[1.75, 1], height_ratios=[1.6, 1])
    lim = 1.15 * max(float(np.abs(shifts).max()), p99, 1e-9)
    zoom_s = min(ZOOM_S, float(time_s[-1]))
    for row in (0, 1):
        ax = fig.add_subplot(grid[row, 0])
        ax.axhline(0, color="0.6", lw=0.8)
        style = {"lw": 1.0} if row == 0 else {"lw": 1.0, "marker": ".", "ms": 5}
        ax.plot(time_s, dy, color="tab:blue", label="dy  (+ = content moves down)", **style)
        ax.plot(time_s, dx, color="tab:orange", label="dx  (+ = content moves right)", **style)
        ax.set_ylim(-lim, lim)
        ax.set_ylabel(f"shift (px; 1 px = {px_um:g} µm)")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        if row == 0:
            ax.set_xlim(time_s[0], time_s[-1])
            ax.axvspan(0, zoom_s, color="0.9", zorder=0)
            ax.set_title(
                f"ground truth gt.shifts: mean (dy, dx) = ({dy.mean():+.1f}, {dx.mean():+.1f}) px,"
                f" std ({dy.std():.1f}, {dx.std():.1f}) px",
                fontsize=10,
            )
            ax.legend(loc="upper right", fontsize=9, ncol=2, framealpha=0.9)
        else:
            ax.set_xlim(0, zoom_s)
            ax.set_xlabel("time (s)")
            ax.set_title(
                f"first {zoom_s:g} s (grey band above), one dot per frame", fontsize=9, loc="left"
            )

    ax = fig.add_subplot(grid[:, 1])
    ax.axhline(0, color="0.8", lw=0.8, zorder=0)
    ax.axvline(0, color="0.8", lw=0.8, zorder=0)
    ax.plot(dx, dy, color="0.75", lw=0.6, zorder=1)
    path = ax.scatter(dx, dy, c=time_s, cmap="viridis", s=12, zorder=2, linewidth=0)
    ax.add_patch(
        Circle(
            (0, 0),
            p99,
            facecolor="none",
            edgecolor="tab:red",
            linestyle="--",
            linewidth=1.5,
            zorder=3,
            label=f"99th pct radius {p99:.1f} px "
            f"(motion_amplitude_um = {motion.motion_amplitude_um:g})",
        )
    )
    ax.scatter(
        dx[0],
        dy[0],
        marker="*",
        s=160,
        color="tab:red",
        edgecolor="k",
        linewidth=0.6,
        zorder=4,
        label="frame 0",
    )
    ax.set_xlim(-lim, lim)
    ax.set_ylim(lim, -lim)  # y increases downward, as in the image
    ax.set_aspect("equal")
    ax.set_xlabel("dx (px), + = right")
    ax.set_ylabel("dy (px), + = down")
    ax.set_title("motion path in the image plane", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), fontsize=8, frameon=False)
    fig.colorbar(path, ax=ax, shrink=0.85, label="time (s)")

    fig.suptitle("Rung 3 — brain motion: a rigid (dy, dx) translation per frame (adds BrainMotion)")
    return [save(fig, out_dir, "rung3_motion.png", small)]
