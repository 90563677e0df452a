"""Ladder rung 1, cells on black: one frame of the movie and the ground truth behind it.

Left: the movie frame with the most total light. Middle: every cell's centre in the
field of view, coloured by its depth below the surface. Right: a few clean calcium
traces C, stacked.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from minisim import simulate

from ._common import rung_spec, save

N_TRACES = 6


def main(out_dir: Path, small: bool = False) -> list[Path]:
    spec = rung_spec(1, small)
    acq = spec.acquisition
    rec = simulate(spec)
    gt = rec.ground_truth

    brightest = int(rec.observed.sum(("y", "x")).argmax("frame"))
    frame = rec.observed.isel(frame=brightest).values
    centers = gt.centers_um.values  # (cell, [z, y, x]) µm from the optical axis
    traces = gt.C.values
    time_s = rec.observed.time_s.values

    # The most active cells: largest swing of the calcium trace.
    swing = traces.max(axis=1) - traces.min(axis=1)
    chosen = np.sort(np.argsort(swing)[::-1][:N_TRACES])

    half_h, half_w = acq.fov_um[0] / 2, acq.fov_um[1] / 2
    extent = (-half_w, half_w, half_h, -half_h)  # +y down, as in the image

    fig, axes = plt.subplots(
        1, 3, figsize=(15, 4.6), gridspec_kw={"width_ratios": [1, 1, 1.35]}, layout="constrained"
    )
    ax = axes[0]
    im = ax.imshow(frame, cmap="gray", extent=extent, vmin=0)
    ax.set_title(f"movie frame {brightest} (t = {time_s[brightest]:.2f} s)")
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    fig.colorbar(im, ax=ax, shrink=0.8, label="intensity (a.u.)")

    ax = axes[1]
    order = np.argsort(centers[:, 0])[::-1]  # shallow cells drawn on top
    sc = ax.scatter(
        centers[order, 2],
        centers[order, 1],
        c=centers[order, 0],
        cmap="viridis_r",
        s=18,
        edgecolor="k",
        linewidth=0.3,
    )
    for rank, cell in enumerate(chosen):  # ring and number the cells whose traces are shown
        colour = f"C{rank}"
        ax.scatter(
            centers[cell, 2],
            centers[cell, 1],
            s=120,
            facecolor="none",
            edgecolor=colour,
            linewidth=1.6,
        )
        ax.annotate(
            str(rank + 1),
            (centers[cell, 2], centers[cell, 1]),
            color=colour,
            fontsize=9,
            fontweight="bold",
            xytext=(5, 4),
            textcoords="offset points",
        )
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.set_facecolor("0.93")
    ax.set_title(f"ground truth: {gt.n_units} cell centres")
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    fig.colorbar(sc, ax=ax, shrink=0.8, label="depth z (µm below surface)")

    ax = axes[2]
    step = max(float(swing[chosen].max()), 1e-9) * 1.05
    for rank, cell in enumerate(chosen):
        offset = (len(chosen) - 1 - rank) * step
        colour = f"C{rank}"
        ax.plot(time_s, traces[cell] - traces[cell].min() + offset, lw=0.9, color=colour)
        ax.text(
            time_s[-1],
            offset + 0.15 * step,
            f" {rank + 1}: z = {centers[cell, 0]:.0f} µm",
            fontsize=8,
            va="bottom",
            ha="left",
            color=colour,
            clip_on=False,
        )
    ax.axvline(time_s[brightest], color="0.6", ls=":", lw=1)
    ax.text(
        time_s[brightest],
        1.0,
        "frame shown ",
        transform=ax.get_xaxis_transform(),
        ha="right",
        va="top",
        fontsize=8,
        color="0.4",
    )
    ax.set_xlim(time_s[0], time_s[-1])
    ax.set_yticks([])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("calcium C (stacked, a.u.)")
    ax.set_title(f"ground truth: clean traces of the {len(chosen)} most active cells")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)

    fig.suptitle("Rung 1 — sharp cells on black: PlaceNeurons → CellActivity → Composite")
    return [save(fig, out_dir, "rung1_cells_on_black.png", small)]
