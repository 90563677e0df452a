"""Blood vessels: surface vessels shade the tissue beneath them.

The rung-5 chain plus ``Vasculature(enabled=True, layers=[VesselLayer()])``. Left: the
ground-truth transmission mask ``gt.vasculature_mask`` (1 = no vessel, floor
``1 − opacity``), blurred by the optics at the layer's depth, which is mostly defocus: the
vessels lie far above the focal plane. Hatched, with dashed edges: the same trees' shadow
were the focus on the vessel layer, to show where the smooth shading comes from. Middle:
the rung-5 movie frame without vessels. Right: the same frame with them, on the same
colour scale: the vessel shadows darken cells and neuropil alike. Vessels are tissue, so
in a recording with brain motion they move with the cells; rung 5 has no motion.
"""

from __future__ import annotations

from pathlib import Path

import dask
import matplotlib.pyplot as plt
import numpy as np

from minisim import Spec, Vasculature, VesselLayer, simulate
from minisim.steps.vasculature import grow_layer, vessel_mask

from ._common import rung_spec, save

#: Frames per chunk: computing one frame only computes its chunk.
CHUNKS = {"frame": 20}
#: Contour levels drawn on the transmission mask.
MASK_LEVELS = (0.3, 0.5, 0.7, 0.9)
#: A cell counts as "under a vessel" when at least this share of its light is lost.
COVERED = 0.5


def vessel_spec(small: bool = False) -> Spec:
    """Rung 5 plus one default vessel layer (same acquisition and seed)."""
    base = rung_spec(5, small)
    layer = VesselLayer()
    return Spec(
        acquisition=base.acquisition,
        seed=base.seed,
        steps=[*base.steps, Vasculature(enabled=True, layers=[layer])],
    )


def main(out_dir: Path, small: bool = False) -> list[Path]:
    plain = simulate(rung_spec(5, small), chunks=CHUNKS)
    spec = vessel_spec(small)
    acq = spec.acquisition
    layer = spec.step("vasculature").layers[0]
    rec = simulate(spec, chunks=CHUNKS)
    gt = rec.ground_truth

    mask = gt.vasculature_mask.values  # (y, x), static, FOV-cropped
    overlap = gt.vessel_overlap_fraction.values[gt.in_fov.values]
    time_s = rec.observed.time_s.values
    shown = int(np.argmax(gt.neuropil_population.values))  # the rung-4/5 figures' frame
    without, with_vessels = dask.compute(
        plain.observed.isel(frame=shown).data, rec.observed.isel(frame=shown).data
    )
    vmax = float(max(without.max(), with_vessels.max()))
    shaded = mask < 0.9
    # The same trees' shadow with the focus on the vessel layer (no motion: canvas = FOV).
    assert spec.step("brain_motion") is None, "the outline assumes the canvas is the FOV"
    trees = [grow_layer(layer, mask.shape, acq.pixel_size_um, spec.seed, 0)]
    in_focus = vessel_mask(acq, [layer], trees, mask.shape, layer.depth_um)
    defocus_um = abs(gt.focal_depth_um - layer.depth_um)

    half_h, half_w = acq.fov_um[0] / 2, acq.fov_um[1] / 2
    extent = (-half_w, half_w, half_h, -half_h)  # +y down, as in the image
    y_um, x_um = rec.observed.y_um.values, rec.observed.x_um.values  # pixel centres

    fig = plt.figure(figsize=(17, 5.2), layout="constrained")
    grid = fig.add_gridspec(1, 3, width_ratios=[1.1, 1, 1.2])
    ax = fig.add_subplot(grid[0, 0])
    im = ax.imshow(mask, cmap="magma", extent=extent, vmin=0, vmax=1)
    levels = [v for v in MASK_LEVELS if mask.min() < v < mask.max()]
    if levels:
        lines = ax.contour(
            x_um,
            y_um,
            mask,
            levels=levels,
            colors="w",
            linewidths=0.6,
        )
        ax.clabel(lines, fontsize=7, fmt="%.1f")
    ax.contour(
        x_um,
        y_um,
        in_focus,
        levels=[0.9],
        colors="tab:cyan",
        linewidths=0.9,
        linestyles="--",
    )
    with plt.rc_context({"hatch.color": "tab:cyan", "hatch.linewidth": 0.5}):
        ax.contourf(x_um, y_um, in_focus, levels=[0, 0.9], colors="none", hatches=["///"])
    ax.plot([], [], color="tab:cyan", linestyle="--", label="the vessels, were they in focus")
    ax.legend(loc="lower right", fontsize=7, framealpha=0.8)
    ax.set_title(
        f"ground truth: vessel transmission (layer at {layer.depth_um:g} µm, focus at "
        f"{gt.focal_depth_um:.0f} µm:\nshadow blurred by σ = NA·{defocus_um:.0f} µm); "
        f"min {mask.min():.2f}, {100 * shaded.mean():.0f}% of the field below 0.9",
        fontsize=10,
    )
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    fig.colorbar(im, ax=ax, shrink=0.8, label="transmission (1 = no vessel)")

    ax_without = fig.add_subplot(grid[0, 1])
    ax_with = fig.add_subplot(grid[0, 2], sharex=ax_without, sharey=ax_without)
    ax_without.imshow(without, cmap="gray", extent=extent, vmin=0, vmax=vmax)
    ax_without.set_title(
        f"movie frame {shown} (t = {time_s[shown]:.2f} s) without vessels\n(the rung-5 frame)",
        fontsize=10,
    )
    ax_without.set_xlabel("x (µm)")
    ax_without.set_ylabel("y (µm)")
    im = ax_with.imshow(with_vessels, cmap="gray", extent=extent, vmin=0, vmax=vmax)
    n_covered = int((overlap >= COVERED).sum())
    ax_with.set_title(
        "the same frame with vessels (same colour scale)\n"
        f"{n_covered} of {overlap.size} cells in view lose ≥ {COVERED:.0%} of their light",
        fontsize=10,
    )
    ax_with.set_xlabel("x (µm)")
    ax_with.tick_params(labelleft=False)
    fig.colorbar(im, ax=[ax_without, ax_with], shrink=0.8, label="intensity (a.u.)")

    fig.suptitle(
        "Vessels — surface blood vessels shade the tissue "
        "(rung 5 plus Vasculature(enabled=True, layers=[VesselLayer()]))"
    )
    return [save(fig, out_dir, "vessels.png", small)]
