"""Check a minisim export in minian's own environment: it opens and minian's functions run.

minian pins zarr 2, so minisim cannot import it; this script is what you run *there*::

    # in minisim's environment
    minisim export rec.zarr --to minian -o minian_export
    # in minian's environment (conda activate minian)
    python check_minian_export.py minian_export

It opens the folder with ``minian.utilities.open_minian`` (falling back to what that
function does, merging every ``*.zarr`` store with xarray, when minian is not installed),
checks the names, dims and sizes minian expects, and, with minian installed, runs a few
of its functions on the data (reconstructing the movie from ``A`` and ``C``, applying the
ground-truth ``motion``). Without a folder argument (in minisim's environment) it first
exports a small simulated recording and checks that. Exits non-zero on any failure.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import xarray as xr

#: The self-check's recording: 2 s under the tests (MINISIM_EXAMPLE_SMALL=1), else 30 s.
SECONDS = 2.0 if os.environ.get("MINISIM_EXAMPLE_SMALL") == "1" else 30.0

EXPECTED = {
    "varr": ("frame", "height", "width"),
    "A": ("unit_id", "height", "width"),
    "C": ("unit_id", "frame"),
    "S": ("unit_id", "frame"),
    "motion": ("frame", "shift_dim"),
}


def open_folder(folder: Path):
    """minian's own reader when present; otherwise the same merge with xarray."""
    try:
        from minian.utilities import open_minian
    except ImportError:
        stores = sorted(p for p in folder.iterdir() if p.is_dir() and p.suffix == ".zarr")
        arrays = [list(xr.open_zarr(p, zarr_format=2).data_vars.values())[0] for p in stores]
        return xr.merge(arrays, compat="no_conflicts"), False
    return open_minian(str(folder)), True


def check(folder: Path) -> None:
    ds, with_minian = open_folder(folder)
    print(f"opened {folder} with {'minian.utilities.open_minian' if with_minian else 'xarray'}")
    for name, dims in EXPECTED.items():
        assert name in ds, f"{name} is missing"
        assert ds[name].dims == dims, f"{name} has dims {ds[name].dims}, expected {dims}"
        print(f"  {name:7s} {dict(ds[name].sizes)} {ds[name].dtype}")
    assert ds.sizes["frame"] == ds["C"].sizes["frame"]
    assert list(ds["shift_dim"].values) == ["height", "width"]
    detectable = int(ds["detectable"].sum()) if "detectable" in ds.coords else None
    print(f"  {ds.sizes['unit_id']} units ({detectable} detectable), {ds.sizes['frame']} frames")
    if not with_minian:
        return
    from minian.cnmf import compute_AtC
    from minian.motion_correction import apply_transform

    movie = compute_AtC(ds["A"], ds["C"].isel(frame=slice(0, 10))).compute()
    print(f"  minian.cnmf.compute_AtC ran: {dict(movie.sizes)}")
    corrected = apply_transform(ds["varr"].isel(frame=slice(0, 10)).astype(float),
                                ds["motion"].isel(frame=slice(0, 10))).compute()  # fmt: skip
    print(f"  minian.motion_correction.apply_transform ran: {dict(corrected.sizes)}")


def small_export(tmp: Path) -> Path:
    import minisim

    acq = minisim.Acquisition(
        fps=20.0, duration_s=SECONDS, optics=minisim.Optics(magnification=8.0),
        image_sensor=minisim.ImageSensor(n_px_height=48, n_px_width=64, pixel_pitch_um=8.0),
    )  # fmt: skip
    spec = minisim.Spec(acquisition=acq, seed=1, steps=[
        minisim.PlaceNeurons(), minisim.CellActivity(), minisim.CellOptics(),
        minisim.Composite(), minisim.BrainMotion(motion_amplitude_um=2.0), minisim.Sensor(),
    ])  # fmt: skip
    return minisim.simulate(spec).to_minian(tmp / "minian_export", progress=False)


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        check(Path(argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            check(small_export(Path(tmp)))
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
