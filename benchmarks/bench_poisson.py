"""ns per pixel of minisim's exact Poisson sampler against numpy's Poisson and normal draws
(and of minisim's own exact normal sampler, the sensor's read noise, against numpy's).

Usage::

    python benchmarks/bench_poisson.py            # 512×512 values per draw, λ by λ,
                                                  # then frames of varying λ

CPU time of this process (``time.process_time``), so other load on a shared machine
inflates the numbers less than wall time would; each figure is the best of 5 repeats.
"""

from __future__ import annotations

import time

import numpy as np

from minisim.engine.normal import standard_normal
from minisim.engine.poisson import available_backends, poisson

N = 512 * 512
MEANS = [0.01, 0.1, 0.5, 3, 9.99, 10, 30, 31.99, 32, 50, 100, 127.9, 128, 1e3, 1e4, 1e5]


def ns_per_value(draw, repeats: int = 5) -> float:
    draw()  # warm up (and compile)
    best = np.inf
    for _ in range(repeats):
        start = time.process_time()
        draw()
        best = min(best, time.process_time() - start)
    return best / N * 1e9


def main() -> None:
    generator = np.random.default_rng(0)
    backends = available_backends()
    normal = ns_per_value(lambda: generator.standard_normal(N))
    uniform = ns_per_value(lambda: generator.random(N))
    print(f"numpy normal {normal:.1f} ns, uniform {uniform:.1f} ns per value")
    for backend in backends:
        ours = ns_per_value(lambda b=backend: standard_normal(N, generator, b))
        print(f"minisim normal ({backend}) {ours:.1f} ns per value")
    header = ["λ", *(f"minisim ({b})" for b in backends), "numpy poisson", "numpy normal"]
    print(" | ".join(header))
    for mean in MEANS:
        means = np.full(N, float(mean))
        row = [f"{mean:g}"]
        for backend in backends:
            row.append(f"{ns_per_value(lambda b=backend, m=means: poisson(m, generator, b)):.1f}")
        row.append(f"{ns_per_value(lambda m=means: generator.poisson(m)):.1f}")
        row.append(f"{normal:.1f}")
        print(" | ".join(row))
    # Frames whose means vary from pixel to pixel (and straddle the methods' boundary).
    rng = np.random.default_rng(1)
    mixed = {
        "uniform 0-200": rng.uniform(0, 200, N),
        "uniform 5-70": rng.uniform(5, 70, N),
        "lognormal, median 20": rng.lognormal(3, 1, N),
    }
    for name, means in mixed.items():
        row = [name]
        for backend in backends:
            row.append(f"{ns_per_value(lambda b=backend, m=means: poisson(m, generator, b)):.1f}")
        row.append(f"{ns_per_value(lambda m=means: generator.poisson(m)):.1f}")
        print(" | ".join(row))


if __name__ == "__main__":
    main()
