"""Non-rigid brain motion: a smooth displacement field on top of the rigid path.

Rung 3 (cells, optics, brain motion) with ``BrainMotion(nonrigid_um=3, nonrigid_scale_um=60)``.
Left: the non-rigid part of ``gt.displacement`` (total minus the rigid shift) in the frame
where it is largest, as arrows over the frame. Middle: its magnitude there, with the
control nodes. Right: the y displacement over time at three pixels of the field against
the rigid shift: they follow the rigid drive with different gains, plus their own drift.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from minisim import BrainMotion, Spec, SpecWarning, simulate

from ._common import rung_spec, save


def main(out_dir: Path, small: bool = False) -> list[Path]:
    base = rung_spec(3, small)
    scale = 20.0 if small else 60.0
    motion = BrainMotion(nonrigid_um=2.0 if small else 3.0, nonrigid_scale_um=scale)
    steps = [s for s in base.steps if s.kind != "brain_motion"] + [motion]
    with warnings.catch_warnings():  # the small field warns about the rung's motion extent
        warnings.simplefilter("ignore", SpecWarning)
        rec = simulate(Spec(acquisition=base.acquisition, seed=base.seed, steps=steps))
    gt = rec.ground_truth
    field = gt.displacement.values
    shifts = gt.shifts.values
    part = field - shifts[:, None, None, :]
    magnitude = np.hypot(part[..., 0], part[..., 1])
    frame = int(np.argmax(magnitude.max(axis=(1, 2))))
    image = rec.observed.isel(frame=frame).values
    t = rec.dataset["time_s"].values
    height, width = image.shape

    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2), layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1, 1.5]})  # fmt: skip
    ax = axes[0]
    ax.imshow(image, cmap="gray")
    step = max(height // 12, 1)
    yy, xx = np.mgrid[step // 2 : height : step, step // 2 : width : step]
    ax.quiver(xx, yy, part[frame, yy, xx, 1], part[frame, yy, xx, 0], color="tab:orange",
              angles="xy", scale_units="xy", scale=0.25)  # fmt: skip
    ax.set_title(f"non-rigid part in frame {frame} (arrows ×4)", fontsize=10)
    ax.axis("off")
    ax = axes[1]
    im = ax.imshow(magnitude[frame], cmap="magma")
    nodes_y, nodes_x = rec.dataset["node_y"].values, rec.dataset["node_x"].values
    ny, nx = np.meshgrid(nodes_y, nodes_x, indexing="ij")
    ax.plot(nx.ravel(), ny.ravel(), "c+", markersize=8, label="control nodes")
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.set_title(f"|non-rigid| (px), nodes {scale:g} µm apart", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax = axes[2]
    ax.plot(t, shifts[:, 0], color="k", linewidth=2, label="rigid shift (gt.shifts)")
    points = [(height // 6, width // 6), (height // 2, width // 2), (5 * height // 6, width // 2)]
    for (y, x), color in zip(points, ("tab:blue", "tab:green", "tab:red"), strict=True):
        ax.plot(t, field[:, y, x, 0], color=color, linewidth=1, label=f"total at (y={y}, x={x})")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("y displacement (px)")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title("each pixel moves its own way around the rigid path", fontsize=10)
    fig.suptitle("Non-rigid brain motion: gt.displacement, the displacement at every pixel")
    return [save(fig, out_dir, "nonrigid_motion.png", small)]
