"""Generate a small benchmark archive on a dask.distributed cluster with minisim.generate.

A full-chain base spec is swept over photon budgets and seeds; every combination is
written to ``archive/<cache_key>.zarr`` by the workers of a two-worker LocalCluster,
and ``archive/manifest.json`` maps the swept values to the stores. Running the script
again finds every store complete and computes nothing. To use an existing cluster,
replace the LocalCluster by ``Client("tcp://scheduler-address:8786")``.

Run ``python examples/generate_archive_on_cluster.py``; set ``MINISIM_EXAMPLE_SMALL=1``
for 64 × 64 px, 2 s recordings (four of them instead of six).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from distributed import Client, LocalCluster

import minisim
from minisim import (
    Acquisition,
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
    sweep,
)

SMALL = os.environ.get("MINISIM_EXAMPLE_SMALL") == "1"


def base_spec() -> Spec:
    """Full chain on a 256 µm field at 1 µm/px for 60 s (64 px and 2 s when small)."""
    px, seconds = (64, 2.0) if SMALL else (256, 60.0)
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
        CellOptics(),
        Composite(),
        Neuropil(),
        motion,
        IlluminationProfile(),
        Vignette(),
        Leakage(),
        Sensor(),
    ]
    return Spec(acquisition=acq, seed=0, steps=steps)


def main() -> None:
    seeds = [0, 1] if SMALL else [0, 1, 2]
    specs = list(
        sweep(base_spec(), {"steps.sensor.photons_per_unit": [30.0, 300.0], "seed": seeds})
    )
    root = Path("archive")
    start = time.perf_counter()
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        print(f"cluster at {cluster.scheduler_address}: {len(specs)} recordings")
        manifest = minisim.generate(specs, root, client=client)
    print(f"wrote {manifest} in {time.perf_counter() - start:.1f} s")

    for entry in json.loads(manifest.read_text())["recordings"]:
        rec = minisim.open_recording(root / entry["store"])
        gt = rec.ground_truth
        print(
            f"  {entry['store']}  photons/unit {entry['axes']['steps.sensor.photons_per_unit']:>5}"
            f"  seed {entry['axes']['seed']}: {int(gt.detectable.sum()):3d} detectable cells, "
            f"focal plane {gt.focal_depth_um:.0f} µm"
        )


if __name__ == "__main__":
    main()
