"""Analyze a stored recording out of core with plain xarray, scoring it against ground truth.

The script simulates a full-chain recording and streams it into ``recording.zarr``
with ``simulate(...).to_zarr``, then reopens the store with ``xarray.open_zarr`` (no
minisim needed for reading) and, without ever loading the movie into memory:

* computes the mean of every frame and sets it beside the ground-truth shifts of the
  same frames;
* extracts ΔF/F of every detectable cell from its observed footprint (a naive,
  motion-blind baseline) and correlates it with the true calcium trace C.

Run ``python examples/analyze_store_out_of_core.py``; set ``MINISIM_EXAMPLE_SMALL=1``
for a 64 × 64 px, 2 s recording.
"""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

from minisim import (
    Acquisition,
    Bleaching,
    BrainMotion,
    CellActivity,
    CellOptics,
    Composite,
    IlluminationProfile,
    ImageSensor,
    Leakage,
    Neuropil,
    Optics,
    PlaceNeurons,
    Sensor,
    Spec,
    Vignette,
    simulate,
)

SMALL = os.environ.get("MINISIM_EXAMPLE_SMALL") == "1"


def write_store(path: str) -> None:
    """A full-chain recording: 256 px at 1 µm/px for 120 s (64 px and 2 s when small)."""
    px, seconds = (64, 2.0) if SMALL else (256, 120.0)
    acq = Acquisition(
        fps=20.0,
        duration_s=seconds,
        optics=Optics(magnification=8.0),
        image_sensor=ImageSensor(n_px_height=px, n_px_width=px, pixel_pitch_um=8.0),
    )
    motion = BrainMotion(motion_amplitude_um=3.0) if SMALL else BrainMotion()
    steps = [
        PlaceNeurons(),
        CellActivity(),
        Bleaching(),
        CellOptics(),
        Composite(),
        Neuropil(),
        motion,
        IlluminationProfile(),
        Vignette(),
        Leakage(),
        Sensor(),
    ]
    simulate(Spec(acquisition=acq, seed=3, steps=steps)).to_zarr(path)


def main() -> None:
    write_store("recording.zarr")

    ds = xr.open_zarr("recording.zarr")  # lazy: nothing read yet
    movie = ds["observed"].astype("float32")
    print(
        f"store: {dict(ds.sizes)}, {movie.data.npartitions} frame chunks, "
        f"minisim {ds.attrs['minisim_version']}"
    )

    # Per-frame mean, next to the true shifts of the same frames (one pass over the movie).
    table = xr.Dataset(
        {"mean": movie.mean(("y", "x")), "dy": ds["shift_y"], "dx": ds["shift_x"]}
    ).reset_coords(drop=True)
    table = table.compute()
    print(table.isel(frame=slice(0, 5)).to_dataframe().astype(float).round(2).to_string())
    radius = np.hypot(table["dy"], table["dx"])
    population = ds["C"].sum("cell").compute()
    print(
        "frame mean correlates with |shift|:",
        round(float(np.corrcoef(table["mean"], radius)[0, 1]), 2),
        "and with summed true calcium:",
        round(float(np.corrcoef(table["mean"], population)[0, 1]), 2),
    )

    # ΔF/F of the detectable cells through half-maximum masks of their observed footprints.
    cells = np.flatnonzero(ds["detectable"].values)
    footprints = ds["A_observed"].isel(cell=cells)
    masks = (footprints >= 0.5 * footprints.max(("y", "x"))).astype("float32")
    fluorescence = xr.dot(movie, masks, dim=("y", "x")) / masks.sum(("y", "x"))
    baseline = fluorescence.median("frame")
    dff = ((fluorescence - baseline) / baseline).compute()  # (frame, cell): small
    truth = ds["C"].isel(cell=cells).compute()
    r = np.array([np.corrcoef(dff.sel(cell=c), truth.sel(cell=c))[0, 1] for c in dff.cell.values])
    print(
        f"{len(cells)} detectable cells of {ds.sizes['cell']}: correlation of ΔF/F with the "
        f"true C: median {np.median(r):.2f}, 10th-90th percentile "
        f"{np.percentile(r, 10):.2f}-{np.percentile(r, 90):.2f}"
    )


if __name__ == "__main__":
    main()
