"""Ladder rung 2, optics: each cell blurred and dimmed according to its depth.

Left pair: one defocused cell's planted footprint (the sharp truth) and its observed
footprint after optics, cropped around the cell, each at its own colour scale. Right:
the whole population's total blur against depth, with the closed-form pieces it is
made of (defocus, scatter, diffraction; they add in quadrature), and on a second axis
the light that reaches the sensor (scatter attenuation × NA²).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from minisim import simulate

from ._common import rung_spec, save

#: Blur range (px) of the cell shown on the left: visibly defocused but still a cell.
SIGMA_RANGE_PX = (3.0, 10.0)
#: Preferred blur of the shown cell (px).
SIGMA_TARGET_PX = 8.0


def pick_cell(rows, cols, sigma_px, half_px, shape) -> int:
    """The cell whose blur is nearest the target, preferring ones whose crop fits the FOV."""
    inside = (
        (rows - half_px >= 0)
        & (rows + half_px < shape[0])
        & (cols - half_px >= 0)
        & (cols + half_px < shape[1])
    )
    in_range = (sigma_px >= SIGMA_RANGE_PX[0]) & (sigma_px <= SIGMA_RANGE_PX[1])
    distance = np.abs(sigma_px - SIGMA_TARGET_PX) + np.where(inside, 0, 1e3)
    distance = distance + np.where(in_range, 0, 1e2)
    return int(np.argmin(distance))


def main(out_dir: Path, small: bool = False) -> list[Path]:
    spec = rung_spec(2, small)
    acq = spec.acquisition
    rec = simulate(spec)
    gt = rec.ground_truth
    px_um = acq.pixel_size_um
    shape = acq.fov_shape

    depth = gt.depth_um.values
    sigma_px = gt.observed_sigma_px.values
    gain = gt.observed_gain.values
    focal = gt.focal_depth_um
    centers = gt.centers_um.values
    rows, cols = acq.um_to_index(centers[:, 1], centers[:, 2], shape)

    half = int(min(30 if not small else 14, (min(shape) - 1) // 2))
    cell = pick_cell(rows, cols, sigma_px, half, shape)
    r0 = int(np.clip(round(rows[cell]) - half, 0, shape[0] - 2 * half - 1))
    c0 = int(np.clip(round(cols[cell]) - half, 0, shape[1] - 2 * half - 1))
    window = {"y": slice(r0, r0 + 2 * half + 1), "x": slice(c0, c0 + 2 * half + 1)}
    planted = gt.A_planted.isel(cell=cell, **window).values
    observed = gt.A_observed.isel(cell=cell, **window).values
    extent_um = (
        (c0 - 0.5 - cols[cell]) * px_um,
        (c0 + 2 * half + 0.5 - cols[cell]) * px_um,
        (r0 + 2 * half + 0.5 - rows[cell]) * px_um,
        (r0 - 0.5 - rows[cell]) * px_um,
    )

    fig = plt.figure(figsize=(15, 5.0), layout="constrained")
    grid = fig.add_gridspec(1, 3, width_ratios=[1, 1, 1.8])
    crops = [
        (planted, f"cell {cell} (z = {depth[cell]:.0f} µm): planted A\nthe sharp truth, peak 1"),
        (
            observed,
            f"same cell observed: σ = {sigma_px[cell] * px_um:.1f} µm,\n"
            f"light × {gain[cell]:.3f} (attenuation·NA²)",
        ),
    ]
    for k, (image, title) in enumerate(crops):
        ax = fig.add_subplot(grid[0, k])
        im = ax.imshow(image, cmap="magma", extent=extent_um, vmin=0, vmax=float(image.max()) or 1)
        if k == 1:  # outline of the sharp footprint, to compare the spread
            ax.contour(
                planted,
                levels=[0.5],
                colors="w",
                linewidths=0.8,
                linestyles="--",
                extent=(extent_um[0], extent_um[1], extent_um[3], extent_um[2]),
            )
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("x from cell centre (µm)")
        if k == 0:
            ax.set_ylabel("y from cell centre (µm)")
        fig.colorbar(im, ax=ax, shrink=0.7, label="own colour scale")

    ax = fig.add_subplot(grid[0, 2])
    z = np.linspace(0.0, max(float(depth.max()), focal) * 1.02, 300)
    optics, tissue = acq.optics, acq.tissue
    defocus = optics.defocus_sigma_um(z, focal)
    scatter = tissue.scatter_sigma_um(z)
    diffraction = np.full_like(z, optics.diffraction_sigma_um)
    total = np.sqrt(defocus**2 + scatter**2 + diffraction**2)
    ax.plot(z, defocus, color="tab:blue", lw=1.6, label="defocus NA·|z − z_focal|")
    ax.plot(
        z, scatter, color="tab:green", lw=1.6, label=f"scatter {tissue.scatter_blur_per_um:g}·z"
    )
    ax.plot(
        z,
        diffraction,
        color="tab:purple",
        lw=1.6,
        label=f"diffraction {optics.diffraction_sigma_um:.2f} µm",
    )
    ax.plot(z, total, color="0.5", lw=1, ls="--", label="quadrature sum (on axis)")
    ax.scatter(depth, sigma_px * px_um, s=12, color="k", zorder=3, label="cells: total blur σ")
    ax.scatter(
        depth[cell],
        sigma_px[cell] * px_um,
        s=90,
        facecolor="none",
        edgecolor="orange",
        linewidth=2,
        zorder=4,
        label=f"cell {cell} (left)",
    )
    ax.axvline(focal, color="tab:blue", ls=":", lw=1.2)
    ax.text(
        focal,
        0.98,
        f" focal plane\n {focal:.0f} µm",
        transform=ax.get_xaxis_transform(),
        color="tab:blue",
        fontsize=9,
        va="top",
    )
    ax.set_xlim(z[0], z[-1])
    ax.set_ylim(0, None)
    ax.set_xlabel("depth z below surface (µm)")
    ax.set_ylabel("blur σ (µm)")
    ax.set_title("every cell: blur and brightness against depth", fontsize=11)

    twin = ax.twinx()
    twin.scatter(depth, gain, s=8, color="tab:red", alpha=0.7, label="cells: attenuation·NA²")
    twin.plot(
        z, tissue.attenuation(z) * optics.collection_efficiency, color="tab:red", lw=1, alpha=0.6
    )
    twin.set_ylim(0, optics.collection_efficiency * 1.05)
    twin.set_ylabel("brightness: attenuation·NA²", color="tab:red")
    twin.tick_params(axis="y", colors="tab:red")

    handles = ax.get_legend_handles_labels()
    twin_handles = twin.get_legend_handles_labels()
    ax.legend(
        handles[0] + twin_handles[0],
        handles[1] + twin_handles[1],
        fontsize=8,
        ncol=3,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
        frameon=False,
    )

    fig.suptitle("Rung 2 — optics: blur and dimming by depth (adds CellOptics)")
    return [save(fig, out_dir, "rung2_optics.png", small)]
