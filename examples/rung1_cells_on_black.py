"""Ladder rung 1: sharp cells on a black background, and the ground truth behind them.

The smallest spec that makes a movie: PlaceNeurons, CellActivity and Composite. No
optics (every cell is sharp, whatever its depth) and no sensor (pixels are clean
float32 intensities). The script prints the ground truth it ships (cell centres,
footprints, calcium traces and spikes) and writes the recording to
``rung1_cells_on_black.zarr`` in the current directory.

Run ``python examples/rung1_cells_on_black.py``; set ``MINISIM_EXAMPLE_SMALL=1`` for a
64 × 64 px, 2 s version that runs in seconds.
"""

from __future__ import annotations

import os

import numpy as np

from minisim import (
    Acquisition,
    CellActivity,
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
    spec = Spec(
        acquisition=acquisition(),
        seed=1,
        steps=[PlaceNeurons(), CellActivity(), Composite()],
    )
    rec = simulate(spec)
    gt = rec.ground_truth
    print(rec)

    depth = gt.depth_um.values
    print(f"{gt.n_units} cells, depths {depth.min():.0f}-{depth.max():.0f} µm below the surface")
    spikes = gt.S.values
    print(
        f"{int(spikes.sum())} spikes; most active cell fired {int(spikes.sum(axis=1).max())} times"
    )

    brightest = int(rec.observed.sum(("y", "x")).argmax("frame"))
    frame = rec.observed[brightest].values
    print(
        f"brightest frame {brightest}: peak {frame.max():.2f}, black pixels {np.mean(frame == 0):.0%}"
    )

    store = rec.to_zarr("rung1_cells_on_black.zarr")
    print(f"wrote {store}")


if __name__ == "__main__":
    main()
