"""Ladder rung 3: rigid brain motion, with the exact shift of every frame.

Adds BrainMotion to rung 2. The tissue is simulated on a canvas wider than the field of
view, shifted per frame (a damped oscillator driven by locomotion and sloshing) and
cropped, so off-field tissue drifts into view. The script prints the motion statistics
and shows that a slice of the movie carries the shifts of its own frames, then writes
``rung3_motion.zarr``.

Run ``python examples/rung3_motion.py``; set ``MINISIM_EXAMPLE_SMALL=1`` for a
64 × 64 px, 2 s version (with the motion amplitude lowered to 3 µm so it stays under
5% of the smaller field).
"""

from __future__ import annotations

import os

import numpy as np

from minisim import (
    Acquisition,
    BrainMotion,
    CellActivity,
    CellOptics,
    Composite,
    ImageSensor,
    Optics,
    PlaceNeurons,
    Spec,
    simulate,
)

SMALL = os.environ.get("MINISIM_EXAMPLE_SMALL") == "1"


def acquisition() -> Acquisition:
    """The ladder's 200 µm field at 1 µm/px for 20 s at 20 fps (64 px, 2 s when small)."""
    px, seconds = (64, 2.0) if SMALL else (200, 20.0)
    return Acquisition(
        fps=20.0,
        duration_s=seconds,
        optics=Optics(magnification=8.0),
        image_sensor=ImageSensor(n_px_height=px, n_px_width=px, pixel_pitch_um=8.0),
    )


def main() -> None:
    motion = BrainMotion(motion_amplitude_um=3.0) if SMALL else BrainMotion()
    spec = Spec(
        acquisition=acquisition(),
        seed=1,
        steps=[PlaceNeurons(), CellActivity(), CellOptics(), Composite(), motion],
    )
    rec = simulate(spec)
    gt = rec.ground_truth
    print(rec)

    shifts = gt.shifts.values  # (frame, 2) applied (dy, dx) in pixels
    radius = np.hypot(shifts[:, 0], shifts[:, 1])
    print(
        f"shifts: std (dy, dx) = ({shifts[:, 0].std():.2f}, {shifts[:, 1].std():.2f}) px, "
        f"99th-percentile radius {np.percentile(radius, 99):.2f} px, max {radius.max():.2f} px"
    )
    step = np.hypot(*np.diff(shifts, axis=0).T)
    print(f"frame-to-frame jump: median {np.median(step):.2f} px, max {step.max():.2f} px")
    print(
        f"{gt.n_units} cells touch the field at rest (the ground truth's units), "
        f"{gt.margin.n_units} more live in the motion margin"
    )

    clip = rec.observed.isel(frame=slice(10, 15))
    print("frames 10-14 carry their own shifts: dy =", clip.shift_y.values.round(2))

    store = rec.to_zarr("rung3_motion.zarr")
    print(f"wrote {store}")


if __name__ == "__main__":
    main()
