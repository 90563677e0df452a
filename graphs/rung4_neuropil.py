"""Ladder rung 4, neuropil: the cells now sit in a smooth, slowly changing haze.

Left: the movie frame at the peak of the population driver. Middle: the neuropil's
spatial field, the sum of its smooth components ``gt.neuropil_spatial``. Right: each
component's temporal envelope ``gt.neuropil_temporal`` with the population driver
``gt.neuropil_population`` (black) that the envelopes follow: the haze rises and falls
with the population's activity instead of blinking with single cells.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from minisim import simulate

from ._common import rung_spec, save


def main(out_dir: Path, small: bool = False) -> list[Path]:
    spec = rung_spec(4, small)
    acq = spec.acquisition
    neuropil = spec.steps[-1]
    coupling = neuropil.population_coupling
    rec = simulate(spec)
    gt = rec.ground_truth

    population = gt.neuropil_population.values  # (frame,), cell-domain work only
    envelopes = gt.neuropil_temporal.values  # (component, frame)
    spatial = gt.neuropil_spatial.values  # (component, y, x), built eagerly
    field = spatial.sum(axis=0)
    time_s = rec.observed.time_s.values
    shown = int(np.argmax(population))
    frame = rec.observed.isel(frame=shown).values

    half_h, half_w = acq.fov_um[0] / 2, acq.fov_um[1] / 2
    extent = (-half_w, half_w, half_h, -half_h)  # +y down, as in the image

    fig = plt.figure(figsize=(16, 4.9), layout="constrained")
    grid = fig.add_gridspec(1, 3, width_ratios=[1, 1, 1.45])
    ax = fig.add_subplot(grid[0, 0])
    im = ax.imshow(frame, cmap="gray", extent=extent, vmin=0)
    ax.set_title(
        f"movie frame {shown} (t = {time_s[shown]:.2f} s):\ncells in the haze, at the population peak",
        fontsize=10,
    )
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    fig.colorbar(im, ax=ax, shrink=0.8, label="intensity (a.u.)")

    ax = fig.add_subplot(grid[0, 1])
    im = ax.imshow(field, cmap="cividis", extent=extent, vmin=0)
    ax.set_title(
        f"ground truth: spatial field Σ of {len(spatial)} components\n"
        f"(σ = {neuropil.spatial_sigma_um:g} µm smooth noise)",
        fontsize=10,
    )
    ax.set_xlabel("x (µm)")
    fig.colorbar(im, ax=ax, shrink=0.8, label="Σ_k neuropil_spatial[k]")

    ax = fig.add_subplot(grid[0, 2])
    for k, envelope in enumerate(envelopes):
        ax.plot(time_s, envelope, lw=1.1, color=f"C{k}", label=f"component {k}")
    ax.plot(time_s, population, lw=1.8, color="k", label="population driver")
    ax.axvline(time_s[shown], color="0.5", ls=":", lw=1)
    ax.text(
        time_s[shown],
        1.0,
        "frame shown ",
        transform=ax.get_xaxis_transform(),
        ha="right",
        va="top",
        fontsize=8,
        color="0.4",
    )
    ax.set_xlim(time_s[0], time_s[-1])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("envelope (population driver has mean 1)")
    ax.set_title(
        f"ground truth: temporal envelopes ({coupling:.0%} population + {1 - coupling:.0%} "
        "slow drift)",
        fontsize=10,
    )
    ax.legend(fontsize=8, ncol=2, loc="lower right", framealpha=0.9)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)

    fig.suptitle(
        "Rung 4 — neuropil: a diffuse haze that follows population activity (adds Neuropil)"
    )
    return [save(fig, out_dir, "rung4_neuropil.png", small)]
