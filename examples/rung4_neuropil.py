"""Ladder rung 4: the neuropil's diffuse haze, driven by population activity.

Adds Neuropil to rung 2. A few smooth spatial components, each modulated by an envelope
that mixes the population's lagged, low-passed calcium with an independent slow drift.
The script prints how much of the movie's light is neuropil and how closely the haze
follows the population, then writes ``rung4_neuropil.zarr``.

Run ``python examples/rung4_neuropil.py``; set ``MINISIM_EXAMPLE_SMALL=1`` for a
64 × 64 px, 2 s version.
"""

from __future__ import annotations

import os

import dask
import numpy as np

from minisim import (
    Acquisition,
    CellActivity,
    CellOptics,
    Composite,
    ImageSensor,
    Neuropil,
    Optics,
    Output,
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
        steps=[PlaceNeurons(), CellActivity(), CellOptics(), Composite(), Neuropil()],
        output=Output(save_intermediates=True),  # keep the cells-only movie for comparison
    )
    rec = simulate(spec)
    gt = rec.ground_truth
    print(rec)

    # One pass computes both means: the movie and its cells-only snapshot share their work.
    total, cells = dask.compute(
        rec.observed.mean(("y", "x")), rec.stage("composite").mean(("y", "x"))
    )
    total, cells = total.values, cells.values
    haze = total - cells
    print(f"neuropil is {haze.mean() / total.mean():.0%} of the mean pixel intensity")

    envelopes = gt.neuropil_temporal.values
    driver = gt.neuropil_population.values
    print(f"{envelopes.shape[0]} components; population driver mean {driver.mean():.3f}")
    print(
        "correlation of the haze with the population driver:",
        round(float(np.corrcoef(haze, driver)[0, 1]), 2),
    )

    store = rec.to_zarr("rung4_neuropil.zarr")
    print(f"wrote {store}")


if __name__ == "__main__":
    main()
