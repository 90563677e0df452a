"""Cost of the CPU-independent math (minisim/engine/portable_math.py).

Usage::

    python benchmarks/bench_portable_math.py            # functions, then the full chain
    python benchmarks/bench_portable_math.py --functions-only

1. Per function: ns per element of the portable version against numpy's own (which
   dispatches AVX-512/AVX2 code and differs between CPUs) on a per-cell array (300
   values), a frame-sized array (512² values), and µs per call on a Python float against
   ``math`` (the scalar path used inside per-cell loops). Also the BLAS-free ``matmul``
   of a footprint blur against ``@`` and ``gaussian_filter`` against SciPy's.
2. The ladder's full chain at 200×200 px, 20 s (400 frames), seed 1: wall time of
   ``simulate()`` (the eager, per-cell part: placement, footprints, vessels) and of
   ``.compute()``, best of 3. Run it on two commits to compare before/after.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np


def best(fn, repeat: int = 5, number: int = 1) -> float:
    """Best wall time of ``number`` calls, in seconds per call."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return min(times)


def bench_functions() -> None:
    from scipy.ndimage import gaussian_filter

    from minisim.engine import portable_math as pm

    rng = np.random.default_rng(0)
    inputs = {
        "exp": (np.exp, math.exp, rng.uniform(-20, 5, 512 * 512)),
        "expm1": (np.expm1, math.expm1, rng.uniform(-3, 3, 512 * 512)),
        "log": (np.log, math.log, rng.uniform(1e-3, 1e3, 512 * 512)),
        "log1p": (np.log1p, math.log1p, rng.uniform(-0.5, 10, 512 * 512)),
        "sin": (np.sin, math.sin, rng.uniform(-100, 100, 512 * 512)),
        "cos": (np.cos, math.cos, rng.uniform(-100, 100, 512 * 512)),
    }
    print(
        f"{'function':10s} {'size':>8s} {'numpy ns/el':>12s} {'portable ns/el':>15s} {'ratio':>6s}"
    )
    for name, (np_f, math_f, x) in inputs.items():
        ours = getattr(pm, name)
        for size in (300, x.size):
            xs = x[:size]
            number = max(1, 200_000 // size)
            t_np = best(lambda: np_f(xs), number=number) / size * 1e9  # noqa: B023
            t_pm = best(lambda: ours(xs), number=number) / size * 1e9  # noqa: B023
            print(f"{name:10s} {size:8d} {t_np:12.2f} {t_pm:15.2f} {t_pm / t_np:6.1f}")
        v = float(x[7])
        t_math = best(lambda: math_f(v), number=20000) * 1e6  # noqa: B023
        t_pm = best(lambda: ours(v), number=20000) * 1e6  # noqa: B023
        print(f"{name:10s} {'scalar':>8s} {t_math:9.3f} µs {t_pm:12.3f} µs {t_pm / t_math:6.1f}")
    base, exponent = rng.uniform(0, 2, 512 * 512), 2.7
    t_np = best(lambda: np.power(base, exponent)) / base.size * 1e9
    t_pm = best(lambda: pm.power(base, exponent)) / base.size * 1e9
    print(f"{'power':10s} {base.size:8d} {t_np:12.2f} {t_pm:15.2f} {t_pm / t_np:6.1f}")
    # A footprint blur: 60×60 patch, σ = 4 px → 93 nodes a side.
    rows, patch = rng.random((93, 60)), rng.random((60, 60))
    t_np = best(lambda: rows @ patch @ rows.T, number=20) * 1e6
    t_pm = best(lambda: pm.matmul(pm.matmul(rows, patch), rows.T), number=20) * 1e6
    print(f"matmul 93×60·60×60·60×93: BLAS {t_np:.0f} µs, portable {t_pm:.0f} µs")
    image = rng.standard_normal((200, 200))
    t_np = best(lambda: gaussian_filter(image, 5.0, mode="nearest"), number=5) * 1e3
    t_pm = best(lambda: pm.gaussian_filter(image, 5.0, mode="nearest"), number=5) * 1e3
    print(f"gaussian_filter 200² σ=5: SciPy {t_np:.2f} ms, portable {t_pm:.2f} ms")


def bench_chain() -> None:
    import dask

    import minisim as ms

    acq = ms.Acquisition(
        fps=20.0,
        duration_s=20.0,
        optics=ms.Optics(magnification=8.0),
        image_sensor=ms.ImageSensor(n_px_height=200, n_px_width=200, pixel_pitch_um=8.0),
    )
    steps = [
        ms.PlaceNeurons(morphology="cytosolic"), ms.CellActivity(), ms.Bleaching(),
        ms.CellOptics(), ms.Composite(), ms.Neuropil(),
        ms.Vasculature(enabled=True, layers=[ms.VesselLayer()]), ms.BrainMotion(),
        ms.IlluminationProfile(), ms.Vignette(), ms.Leakage(), ms.Sensor(),
    ]  # fmt: skip
    spec = ms.Spec(acquisition=acq, seed=1, steps=steps)
    builds, computes = [], []
    for _ in range(3):
        start = time.perf_counter()
        rec = ms.simulate(spec)
        built = time.perf_counter()
        with dask.config.set(scheduler="threads"):
            rec.compute()
        builds.append(built - start)
        computes.append(time.perf_counter() - built)
    print(
        f"full chain 200 px, 400 frames, {rec.dataset.sizes['cell']} cells: simulate() "
        f"{min(builds):.2f} s, compute() {min(computes):.2f} s (best of 3)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions-only", action="store_true")
    args = parser.parse_args()
    bench_functions()
    if not args.functions_only:
        bench_chain()


if __name__ == "__main__":
    main()
