"""A real CMOS sensor in the dark: black level, dark current, DSNU, hot pixels, row noise.

The ladder's acquisition with only a ``Sensor`` (no light at all) and a 12-bit sensor with
every imperfection of ``ImageSensor`` switched on. Left: one dark frame; the hot pixels
are the white dots and the row noise the horizontal banding. Middle: each pixel's
temporal mean against its ground-truth ``sensor_offset_adu`` (the floor of the ADC
removes 0.5 on average). Right: each row's mean of one frame, minus its pixels' offsets,
against the recorded ``row_offset_e``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from minisim import Acquisition, ImageSensor, Sensor, Spec, simulate

from ._common import SEED, acquisition, save

#: The imperfections drawn (12-bit sensor, gain 1 ADU/e⁻).
REAL = dict(black_level_adu=100.0, dark_current_e_per_s=200.0, dsnu_e=3.0, prnu=0.02,
            hot_pixel_fraction=0.002, hot_pixel_e_per_s=4000.0, row_noise_e=3.0)  # fmt: skip


def main(out_dir: Path, small: bool = False) -> list[Path]:
    ladder = acquisition(small)
    sensor = ladder.image_sensor.model_dump() | {"bit_depth": 12, **REAL}
    acq = Acquisition(**(ladder.model_dump() | {"image_sensor": ImageSensor(**sensor)}))
    ds = simulate(Spec(acquisition=acq, seed=SEED, steps=[Sensor()])).dataset.compute()
    counts = ds["observed"].values.astype(float)
    offset = ds["sensor_offset_adu"].values
    hot = ds["hot_pixels"].values

    fig, axes = plt.subplots(1, 3, figsize=(16, 5), layout="constrained")
    frame = counts[0]
    im = axes[0].imshow(frame, cmap="gray", vmin=np.percentile(frame, 1),
                        vmax=np.percentile(frame, 99.5))  # fmt: skip
    axes[0].set_title(f"one dark frame: {int(hot.sum())} hot pixels, row banding", fontsize=10)
    fig.colorbar(im, ax=axes[0], shrink=0.8, label="counts (ADU)")

    mean = counts.mean(axis=0)
    axes[1].scatter(offset[~hot], mean[~hot], s=3, alpha=0.4, label="pixels")
    axes[1].scatter(offset[hot], mean[hot], s=12, color="tab:red", label="hot pixels")
    line = np.array([offset.min(), offset.max()])
    axes[1].plot(line, line - 0.5, "k--", linewidth=0.8, label="truth − 0.5 (ADC floor)")
    axes[1].set_xscale("log")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("ground truth sensor_offset_adu")
    axes[1].set_ylabel(f"temporal mean of {counts.shape[0]} dark frames (ADU)")
    axes[1].legend(fontsize=8)
    axes[1].set_title("per-pixel dark level = black + dark current + DSNU", fontsize=10)

    rows = ds["row_offset_e"].values
    residual = (counts - offset + 0.5).mean(axis=2)
    axes[2].scatter(rows.ravel(), residual.ravel(), s=3, alpha=0.4)
    lim = np.abs(rows).max()
    axes[2].plot([-lim, lim], [-lim, lim], "k--", linewidth=0.8)
    r = np.corrcoef(rows.ravel(), residual.ravel())[0, 1]
    axes[2].set_xlabel("ground truth row_offset_e (e⁻ = ADU at gain 1)")
    axes[2].set_ylabel("row mean − pixel offsets (ADU)")
    axes[2].set_title(f"row noise: every row of every frame, r = {r:.3f}", fontsize=10)
    fig.suptitle("A real CMOS sensor: the fixed pattern and the row noise are ground truth")
    return [save(fig, out_dir, "real_sensor.png", small)]
