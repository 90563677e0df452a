"""Ladder rung 5, the scope's static optical fields: falloff and stray light.

Left: the two multiplicative falloffs combined, illumination × vignette (1 at the
centre, lowest in the corners). Middle: the additive leakage glow. Right: a movie frame
with both applied (the same frame as the rung-4 figure): a bright centre, dim corners
and a central glow over the cells and neuropil. The fields belong to the microscope, so
they are identical in every frame.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from minisim import simulate

from ._common import rung_spec, save

#: Contour levels drawn on the combined falloff.
FALLOFF_LEVELS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def main(out_dir: Path, small: bool = False) -> list[Path]:
    spec = rung_spec(5, small)
    acq = spec.acquisition
    illumination_step, vignette_step, leakage_step = spec.steps[-3:]
    rec = simulate(spec)
    gt = rec.ground_truth

    falloff = gt.illumination.values * gt.vignette.values  # (y, x), static
    leakage = gt.leakage.values
    time_s = rec.observed.time_s.values
    shown = int(np.argmax(gt.neuropil_population.values))  # as in the rung-4 figure
    frame = rec.observed.isel(frame=shown).values

    half_h, half_w = acq.fov_um[0] / 2, acq.fov_um[1] / 2
    extent = (-half_w, half_w, half_h, -half_h)  # +y down, as in the image
    contour_extent = (extent[0], extent[1], extent[3], extent[2])

    fig, axes = plt.subplots(1, 3, figsize=(16, 5.0), layout="constrained")
    ax = axes[0]
    im = ax.imshow(falloff, cmap="viridis", extent=extent, vmin=0, vmax=1)
    lines = ax.contour(
        falloff,
        levels=[v for v in FALLOFF_LEVELS if falloff.min() < v < falloff.max()],
        colors="w",
        linewidths=0.7,
        extent=contour_extent,
    )
    ax.clabel(lines, fontsize=8, fmt="%.1f")
    ax.set_title(
        "ground truth: illumination × vignette (multiplicative)\n"
        f"corner {illumination_step.falloff:g} × {vignette_step.falloff:g} = "
        f"{falloff[0, 0]:.2f}, centre {falloff.max():.3f}",
        fontsize=10,
    )
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    fig.colorbar(im, ax=ax, shrink=0.8, label="gain (1 = no loss)")

    ax = axes[1]
    im = ax.imshow(leakage, cmap="inferno", extent=extent, vmin=0)
    ax.set_title(
        "ground truth: leakage glow (additive)\n"
        f"{leakage_step.profile}, peak {leakage.max():.3f} (a cell's f0 is 1)",
        fontsize=10,
    )
    ax.set_xlabel("x (µm)")
    fig.colorbar(im, ax=ax, shrink=0.8, label="added intensity (a.u.)")

    ax = axes[2]
    im = ax.imshow(frame, cmap="gray", extent=extent, vmin=0)
    ax.set_title(
        f"movie frame {shown} (t = {time_s[shown]:.2f} s), the rung-4 frame\n"
        "× illumination × vignette + leakage",
        fontsize=10,
    )
    ax.set_xlabel("x (µm)")
    fig.colorbar(im, ax=ax, shrink=0.8, label="intensity (a.u.)")

    fig.suptitle(
        "Rung 5 — static optical fields: illumination, vignette, leakage "
        "(adds IlluminationProfile, Vignette, Leakage)"
    )
    return [save(fig, out_dir, "rung5_fields.png", small)]
