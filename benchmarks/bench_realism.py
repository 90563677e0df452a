"""Cost of the realism effects: breathing vessels per frame, the real sensor per frame.

Usage::

    python benchmarks/bench_realism.py

1. Breathing vessels: ms per frame of ``breathe_frames`` (path lengths, Beer–Lambert,
   one blur per layer) on a 256 × 256 px canvas with one default ``VesselLayer``, split
   into its parts; the blur dominates (the default layer's shadow has σ ≈ 32 px).
2. The sensor: ms per 256 × 256 px frame of ``digitize_frames`` with an ideal sensor and
   with every ``ImageSensor`` imperfection on (the fixed maps are cached per process).
Best of 3 runs each, one core.
"""

from __future__ import annotations

import time

import numpy as np


def best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    from minisim import Acquisition, ImageSensor, Optics, Sensor, VesselLayer
    from minisim.engine import portable_math as pm
    from minisim.steps.sensor import digitize_frames
    from minisim.steps.vasculature import (
        breathe_frames,
        layer_blur_px,
        transmission,
        vessel_geometry,
    )
    from minisim.steps.vessel_dilation import path_length

    acq = Acquisition(optics=Optics(magnification=8.0), image_sensor=ImageSensor(
        n_px_height=256, n_px_width=256, pixel_pitch_um=8.0))  # fmt: skip
    layers, canvas, n = (VesselLayer(),), (256, 256), 10
    geometry = vessel_geometry(layers, canvas, acq.pixel_size_um, 1)
    frames = np.ones((n, *canvas), np.float32)
    dilation = np.linspace(-0.1, 0.1, n)[:, None]
    whole = best(lambda: breathe_frames(0, n, frames, dilation, geometry, (acq, layers), 100.0))
    length = path_length(geometry[0], 1.05, canvas)
    shade = transmission(length, layers[0].opacity, layers[0].absorption_per_um)
    sigma = layer_blur_px(acq, layers[0], 100.0)
    print(f"breathing vessels: {whole / n * 1e3:.1f} ms/frame "
          f"({len(geometry[0][0])} vessel pixel pairs, blur σ = {sigma:.1f} px)")  # fmt: skip
    print(f"  path lengths  {best(lambda: path_length(geometry[0], 1.05, canvas)) * 1e3:.1f} ms")
    print(f"  Beer–Lambert  {best(lambda: transmission(length, 0.85, 0.04)) * 1e3:.1f} ms")
    print(
        f"  blur          {best(lambda: pm.gaussian_filter(shade, sigma, mode='nearest')) * 1e3:.1f} ms"
    )

    light = np.full((n, *canvas), 0.5, np.float32)
    for label, sensor in (
        ("ideal", ImageSensor(n_px_height=256, n_px_width=256, bit_depth=12)),
        (
            "real",
            ImageSensor(
                n_px_height=256,
                n_px_width=256,
                bit_depth=12,
                black_level_adu=100,
                dark_current_e_per_s=200,
                dsnu_e=3,
                prnu=0.02,
                hot_pixel_fraction=0.001,
                row_noise_e=3,
            ),
        ),  # fmt: skip
    ):
        real = Acquisition(image_sensor=sensor)
        readout = Sensor().readout(real, seed=1)
        digitize_frames(0, 1, light[:1], readout)  # build the cached fixed maps
        cost = best(lambda readout=readout: digitize_frames(0, n, light, readout)) / n
        print(f"sensor, {label}: {cost * 1e3:.1f} ms/frame")


if __name__ == "__main__":
    main()
