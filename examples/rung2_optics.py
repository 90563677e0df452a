"""Ladder rung 2: optics blur and dim every cell according to its depth.

Adds CellOptics to rung 1. Diffraction, scattering and defocus add in quadrature into
one Gaussian blur per cell; scattering loss and the NA² collection efficiency dim it.
The script prints the resolved focal plane, how blur and brightness vary with depth,
and how many cells lie within the depth of field, then writes ``rung2_optics.zarr``.

Run ``python examples/rung2_optics.py``; set ``MINISIM_EXAMPLE_SMALL=1`` for a
64 × 64 px, 2 s version.
"""

from __future__ import annotations

import os

import numpy as np

from minisim import (
    Acquisition,
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
    spec = Spec(
        acquisition=acquisition(),
        seed=1,
        steps=[PlaceNeurons(), CellActivity(), CellOptics(), Composite()],
    )
    rec = simulate(spec)
    gt = rec.ground_truth
    print(rec)

    focal = gt.focal_depth_um
    depth = gt.depth_um.values
    sigma = gt.observed_sigma_px.values
    gain = gt.observed_gain.values
    print(f"focal plane {focal:.1f} µm (median cell depth with 'auto' focus and no sensor)")
    print(f"{int(gt.in_focus.sum())} of {gt.n_units} cells within the depth of field")
    nearest = int(np.argmin(np.abs(depth - focal)))
    farthest = int(np.argmax(np.abs(depth - focal)))
    for label, i in (("closest to focus", nearest), ("farthest from focus", farthest)):
        print(
            f"  {label}: z = {depth[i]:.0f} µm, blur σ = {sigma[i]:.1f} px, "
            f"light × {gain[i]:.3f}, footprint peak {float(gt.A_observed[i].max()):.3f}"
        )

    store = rec.to_zarr("rung2_optics.zarr")
    print(f"wrote {store}")


if __name__ == "__main__":
    main()
