"""Ladder rung 6: the full recording, digitized by a sensor into noisy 8-bit counts.

The whole chain: placement, activity, bleaching, optics, composite, neuropil, brain
motion, the scope's static fields and the sensor (Poisson shot noise, read noise, gain,
8-bit quantization). The sensor makes the "auto" focus maximize the number of
detectable cells and decides which cells are detectable. The script prints the count
statistics, the detectable cells and the noise of one frame against its noise-free
expectation, writes ``rung6_full_recording.zarr``, and, when PyAV is installed
(``pip install ".[video]"``), the lossless video ``rung6_full_recording.avi``.

Run ``python examples/rung6_full_recording.py``; set ``MINISIM_EXAMPLE_SMALL=1`` for a
64 × 64 px, 2 s version (with the motion amplitude lowered to 3 µm).
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

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
        steps=[
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
        ],
    )
    rec = simulate(spec)
    gt = rec.ground_truth
    print(rec)
    print(
        f"focal plane {gt.focal_depth_um:.1f} µm; {int(gt.detectable.sum())} of "
        f"{gt.n_units} cells in the field are detectable"
    )

    store = rec.to_zarr("rung6_full_recording.zarr")  # one pass over the movie
    print(f"wrote {store}")

    # Frame statistics from the store (nothing is recomputed).
    from minisim import open_recording

    stored = open_recording(store)
    counts = stored.observed
    max_count = spec.acquisition.image_sensor.max_count
    saturated = int((counts == max_count).sum())
    print(
        f"counts: mean {float(counts.mean()):.1f}, max {int(counts.max())}, "
        f"{saturated} pixel values clipped at {max_count} of {counts.size}"
    )

    # Noise of one frame: the same scene stopped before the sensor, its mean counts.
    k = counts.sizes["frame"] // 2
    expected = simulate(spec, until="leakage").expected_counts()[k].values
    noisy = counts[k].values.astype(float)
    print(
        f"frame {k}: mean expected count {expected.mean():.1f}, "
        f"noise std {np.std(noisy - expected):.2f} counts"
    )

    fade = stored.ground_truth.bleaching.values
    print(f"bleaching: least intact cell at {fade.min():.5f} of its fluorophore by the end")

    if importlib.util.find_spec("av") is None:
        print('skipped the video: pip install ".[video]" in the minisim source tree')
    else:
        video = stored.write_video("rung6_full_recording.avi", progress=False)
        print(f"wrote {video} (lossless; 8-bit counts written unchanged)")


if __name__ == "__main__":
    main()
