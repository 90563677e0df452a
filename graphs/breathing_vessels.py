"""Breathing vessels: radii follow the population's activity after a delay, plus vasomotion.

Rung 4 (cells, optics, neuropil) plus one vessel layer with ``VesselDilation``. Top: the
population's relative activity and the recorded ``vessel_dilation`` (radius change): the
dilation follows activity after the neurovascular delay, on top of the slow vasomotion.
Bottom: the light the vessels let through (the movie after vessels over the movie before
them) in the frames of least and most dilation, and their difference: the shadows widen.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from minisim import Output, Spec, Vasculature, VesselDilation, VesselLayer, simulate

from ._common import rung_spec, save


def main(out_dir: Path, small: bool = False) -> list[Path]:
    base = rung_spec(4, small)
    vessels = Vasculature(
        enabled=True,
        layers=[VesselLayer(depth_um=90.0, root_radius_um=14.0, min_radius_um=4.0)],
        dilation=VesselDilation(neurovascular_gain=0.6, vasomotion_amplitude=0.03),
    )
    spec = Spec(acquisition=base.acquisition, seed=base.seed, steps=[*base.steps, vessels],
                output=Output(save_intermediates=True))  # fmt: skip
    ds = simulate(spec).dataset.compute()
    dilation = ds["vessel_dilation"].values[:, 0]
    population = ds["C"].values.sum(axis=0)
    relative = population / population.mean() - 1
    shade = ds["stage_vasculature"].values / np.maximum(ds["stage_neuropil"].values, 1e-9)
    narrow, wide = int(np.argmin(dilation)), int(np.argmax(dilation))
    t = ds["time_s"].values

    fig = plt.figure(figsize=(14, 8.5), layout="constrained")
    grid = fig.add_gridspec(2, 3, height_ratios=[1, 1.4])
    ax = fig.add_subplot(grid[0, :])
    ax.plot(t, relative, color="0.5", linewidth=1, label="population activity P/mean(P) − 1")
    ax2 = ax.twinx()
    ax2.plot(t, dilation, color="tab:red", linewidth=1.5, label="vessel_dilation (truth)")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("relative activity")
    ax2.set_ylabel("radius change (fraction)", color="tab:red")
    ax.legend(loc="upper left", fontsize=8)
    ax2.legend(loc="upper right", fontsize=8)
    for col, (frame, label) in enumerate(((narrow, "least"), (wide, "most"))):
        axi = fig.add_subplot(grid[1, col])
        im = axi.imshow(shade[frame], cmap="gray", vmin=shade.min(), vmax=1)
        axi.set_title(f"transmission, frame {frame}: {label} dilated "
                      f"({dilation[frame]:+.3f})", fontsize=10)  # fmt: skip
        axi.axis("off")
    fig.colorbar(im, ax=fig.axes[-2:], shrink=0.7, label="transmission")
    axd = fig.add_subplot(grid[1, 2])
    diff = shade[wide] - shade[narrow]
    lim = np.abs(diff).max() or 1
    im = axd.imshow(diff, cmap="RdBu", vmin=-lim, vmax=lim)
    axd.set_title("difference (most − least): wider shadows", fontsize=10)
    axd.axis("off")
    fig.colorbar(im, ax=axd, shrink=0.7)
    fig.suptitle("Breathing vessels: shading recomputed every frame from the recorded radius")
    return [save(fig, out_dir, "breathing_vessels.png", small)]
