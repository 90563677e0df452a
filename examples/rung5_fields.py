"""Ladder rung 5: the microscope's static fields (illumination, vignette, leakage).

Adds IlluminationProfile, Vignette and Leakage to rung 4. They belong to the scope, not
the brain: smooth, identical in every frame, and recorded as (y, x) fields attached to
the movie. The script prints the fields' values at the centre and the corner, checks
that the movie's temporal mean shows the falloff, and writes ``rung5_fields.zarr``.

Run ``python examples/rung5_fields.py``; set ``MINISIM_EXAMPLE_SMALL=1`` for a
64 × 64 px, 2 s version.
"""

from __future__ import annotations

import os

from minisim import (
    Acquisition,
    CellActivity,
    CellOptics,
    Composite,
    IlluminationProfile,
    ImageSensor,
    Leakage,
    Neuropil,
    Optics,
    PlaceNeurons,
    Spec,
    Vignette,
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
        steps=[
            PlaceNeurons(),
            CellActivity(),
            CellOptics(),
            Composite(),
            Neuropil(),
            IlluminationProfile(),
            Vignette(),
            Leakage(),
        ],
    )
    rec = simulate(spec)
    gt = rec.ground_truth
    print(rec)

    gain = (gt.illumination * gt.vignette).values  # multiplicative fields
    glow = gt.leakage.values  # additive field
    h, w = gain.shape
    print(f"illumination × vignette: centre {gain[h // 2, w // 2]:.3f}, corner {gain[0, 0]:.3f}")
    print(f"leakage glow: centre {glow[h // 2, w // 2]:.3f}, corner {glow[0, 0]:.4f}")

    mean_image = rec.observed.mean("frame").values  # streams over all frames
    ring = max(1, h // 8)
    centre = mean_image[h // 2 - ring : h // 2 + ring, w // 2 - ring : w // 2 + ring].mean()
    corners = (
        mean_image[:ring, :ring].mean()
        + mean_image[:ring, -ring:].mean()
        + mean_image[-ring:, :ring].mean()
        + mean_image[-ring:, -ring:].mean()
    ) / 4
    print(f"temporal mean image: centre {centre:.3f}, corners {corners:.3f}")

    store = rec.to_zarr("rung5_fields.zarr")
    print(f"wrote {store}")


if __name__ == "__main__":
    main()
