"""Ladder rung 6, the full recording: the sensor turns light into noisy 8-bit counts.

Left: the mean counts of one frame, ``expected_counts()`` of the same spec
stopped before its sensor (``until="leakage"``), so the scene and the auto-focus plane
are the same. Middle: the same frame of the recording, with Poisson shot noise and
Gaussian read noise drawn before the ADC. Both use the full ADC range 0–255. Right: the
histogram of that frame's counts on a log axis, noisy and noise-free; clipping at the
8-bit ceiling shows up as a spike in the last bin, and the title says so when no pixel
reaches it.

The frame shown is the one with the most pixels clipped at the ceiling (one pass over the
observed movie counts them per frame). At the default exposure, the reference physics'
100 photons per unit, the brightest pixel of the noise-free movie sits just below full
scale, so only shot noise pushes a few pixels over: the clipping is rare, and the frame
where the brightest cell peaks need not show any. Without any clipped pixel (the small
test version), the frame where the brightest cell peaks is shown, picked from the ground
truth alone.
"""

from __future__ import annotations

from pathlib import Path

import dask
import matplotlib.pyplot as plt
import numpy as np

from minisim import Sensor, simulate
from minisim.steps.sensor import digitize_frame

from ._common import rung_spec, save

#: Frames per chunk: computing one frame only computes its chunk.
CHUNKS = {"frame": 20}
#: Exposure factor of the overexposed comparison drawn in the histogram.
BRIGHTER = 2.0


def brightest_frame(rec) -> int:
    """Frame where a cell in the field of view is brightest, from the ground truth alone."""
    gt = rec.ground_truth  # its units are the cells in the field at rest
    emission = gt.C.values * gt.bleaching.values  # (cell, frame), what composite draws
    peak = emission * gt.observed_peak.values[:, None]
    return int(np.argmax(peak.max(axis=0))) if peak.size else 0


def clipped_per_frame(rec, max_count: int) -> np.ndarray:
    """Number of pixels at the ADC ceiling in each frame (one pass over the movie)."""
    return (rec.observed == max_count).sum(("y", "x")).values


def main(out_dir: Path, small: bool = False) -> list[Path]:
    spec = rung_spec(6, small)
    acq = spec.acquisition
    sensor_step = spec.step("sensor")
    image_sensor = acq.image_sensor
    max_count = image_sensor.max_count
    rec = simulate(spec, chunks=CHUNKS)
    before_sensor = simulate(spec, until="leakage", chunks=CHUNKS)
    gt = rec.ground_truth

    clipped = clipped_per_frame(rec, max_count)
    shown = int(np.argmax(clipped)) if clipped.any() else brightest_frame(rec)
    movie_clipped = int(clipped.sum())
    movie_px = clipped.size * acq.fov_shape[0] * acq.fov_shape[1]
    time_s = rec.observed.time_s.values
    expected, observed, intensity = dask.compute(
        before_sensor.expected_counts().isel(frame=shown).data,
        rec.observed.isel(frame=shown).data,
        before_sensor.observed.isel(frame=shown).data,
    )
    saturated = observed == max_count
    n_saturated = int(saturated.sum())
    n_expected_saturated = int((expected == max_count).sum())
    # Detected electrons per pixel (before the floor) and the noise they predict.
    electrons = np.maximum(intensity.astype(float), 0) * sensor_step.photons_per_unit
    electrons *= image_sensor.quantum_efficiency
    unclipped = ~saturated & (expected < max_count) & (observed > 0)
    residual = observed[unclipped].astype(float) - expected[unclipped]
    predicted_var = (electrons[unclipped].mean() + image_sensor.read_noise_e**2) * (
        image_sensor.gain_adu_per_e**2
    )

    half_h, half_w = acq.fov_um[0] / 2, acq.fov_um[1] / 2
    extent = (-half_w, half_w, half_h, -half_h)  # +y down, as in the image
    y_um, x_um = rec.observed.y_um.values, rec.observed.x_um.values  # pixel centres

    fig = plt.figure(figsize=(17, 5.2), layout="constrained")
    grid = fig.add_gridspec(1, 3, width_ratios=[1, 1.2, 1.35])
    ax_left = fig.add_subplot(grid[0, 0])
    ax_mid = fig.add_subplot(grid[0, 1], sharex=ax_left, sharey=ax_left)
    im = ax_left.imshow(expected, cmap="gray", extent=extent, vmin=0, vmax=max_count)
    ax_left.set_title(
        f"noise-free expected counts, frame {shown} (t = {time_s[shown]:.2f} s)\n"
        f"mean count over the noise (no random draws); max {expected.max():.1f}",
        fontsize=10,
    )
    ax_left.set_xlabel("x (µm)")
    ax_left.set_ylabel("y (µm)")

    ax_mid.imshow(observed, cmap="gray", extent=extent, vmin=0, vmax=max_count)
    if n_saturated:  # outline the clipped pixels without hiding them
        ax_mid.contour(
            x_um,
            y_um,
            saturated,
            levels=[0.5],
            colors="tab:red",
            linewidths=0.9,
        )
        ax_mid.plot([], [], color="tab:red", label=f"saturated ({max_count})")
        ax_mid.legend(loc="lower right", fontsize=8, framealpha=0.8)
    ax_mid.set_title(
        f"observed counts, same frame: {sensor_step.shot_noise.capitalize()} shot + "
        f"{image_sensor.read_noise_e:g} e⁻ read noise\n"
        f"{image_sensor.bit_depth}-bit ADC, gain {image_sensor.gain_adu_per_e:g} ADU/e⁻; "
        f"max {int(observed.max())}",
        fontsize=10,
    )
    ax_mid.set_xlabel("x (µm)")
    ax_mid.tick_params(labelleft=False)
    fig.colorbar(im, ax=[ax_left, ax_mid], shrink=0.8, label="counts (ADU), same 0–255 scale")

    ax = fig.add_subplot(grid[0, 2])
    bins = np.arange(max_count + 2) - 0.5  # one bin per integer count
    ax.hist(
        observed.ravel(),
        bins=bins,
        color="tab:blue",
        alpha=0.7,
        label="observed (with noise)",
    )
    ax.hist(
        expected.ravel(),
        bins=bins,
        histtype="step",
        color="k",
        linewidth=1.0,
        label="expected (noise-free)",
    )
    # The same frame read out at a doubled exposure (same scene and focal plane, the
    # sensor's own kernel): what the ceiling does once the brightest pixels exceed it.
    brighter = Sensor(photons_per_unit=BRIGHTER * sensor_step.photons_per_unit)
    overexposed = digitize_frame(intensity, brighter.readout(acq, spec.seed), shown)
    n_over = int((overexposed == max_count).sum())
    ax.hist(
        overexposed.ravel(),
        bins=bins,
        histtype="step",
        color="tab:orange",
        linewidth=1.0,
        label=f"observed at {BRIGHTER:g}× exposure",
    )
    ax.annotate(
        f"{BRIGHTER:g}× exposure: spike of {n_over} px\nclipped at {max_count}",
        xy=(max_count, max(n_over, 1)),
        xytext=(0.45, 0.5),
        textcoords="axes fraction",
        fontsize=8,
        color="tab:orange",
        arrowprops={"arrowstyle": "->", "color": "tab:orange"},
    )
    ax.axvline(max_count, color="tab:red", linestyle="--", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xlim(-5, max_count + 8)
    ax.set_ylim(0.6, 3e4)  # headroom above the peak for the notes
    ax.set_xlabel("counts (ADU)")
    ax.set_ylabel("pixels")
    ax.legend(loc="upper right", fontsize=8, ncols=1)
    ax.text(
        0.97,
        0.74,
        f"observed − expected (unclipped px):\nmean {residual.mean():+.2f}, "
        f"variance {residual.var():.1f} ADU²\n"
        f"shot + read predicts ≈ {predicted_var:.1f}",
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=8,
        bbox={"facecolor": "white", "edgecolor": "0.8", "alpha": 0.9},
    )
    if n_saturated:
        ax.annotate(
            f"saturation: {n_saturated} px clipped\nat the 8-bit ceiling {max_count}"
            f"\n(noise-free: {n_expected_saturated} px)",
            xy=(max_count, n_saturated),
            xytext=(0.45, 0.2),
            textcoords="axes fraction",
            fontsize=8,
            color="tab:red",
            arrowprops={"arrowstyle": "->", "color": "tab:red"},
        )
        title = (
            f"count histogram of frame {shown}: the bin at {max_count} is "
            f"saturation\n({n_saturated} of {observed.size} px clipped; whole movie: "
            f"{movie_clipped} px, {1e6 * movie_clipped / movie_px:.1f} per million)"
        )
    else:
        title = (
            f"count histogram of frame {shown}: no pixel saturates\n"
            f"(max {int(observed.max())} < {max_count} at the default exposure, "
            f"{sensor_step.photons_per_unit:g} photons/unit)"
        )
    ax.set_title(title, fontsize=10)

    n_detectable = int(gt.detectable.values.sum())
    fig.suptitle(
        "Rung 6 — full recording: photons → shot + read noise → 8-bit counts "
        f"(adds Bleaching, BrainMotion, Sensor); focus {gt.focal_depth_um:.1f} µm, "
        f"{n_detectable} of {gt.n_units} cells in the field detectable"
    )
    return [save(fig, out_dir, "rung6_sensor.png", small)]
