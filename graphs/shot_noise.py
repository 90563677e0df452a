"""Exact shot noise against its Gaussian approximation, mean by mean.

minisim's sensor draws each pixel's photo-electrons from Poisson(λ) with its own exact
sampler (``minisim.engine.poisson``: a tabulated inversion below λ = 128, transformed
rejection above); ``Sensor(shot_noise="gaussian")`` draws λ + √λ·N(0, 1) instead, as the
eager implementation does. Each panel is one expected count λ: bars are the sampler's
counts (from one keyed stream), black dots the Poisson probabilities, the grey curve the
Gaussian density. In dim pixels the approximation puts mass below zero and misses the
skew; from a few hundred electrons the two agree.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from minisim.engine.poisson import poisson

from ._common import SEED, save

MEANS = (0.5, 3.0, 12.0, 300.0)


def main(out_dir: Path, small: bool = False) -> list[Path]:
    n = 20_000 if small else 400_000
    fig, axes = plt.subplots(1, len(MEANS), figsize=(13, 3.2))
    for ax, mean in zip(axes, MEANS, strict=True):
        counts = poisson(np.full(n, mean), np.random.default_rng([SEED, int(mean * 10)]))
        low = max(0, int(mean - 5 * np.sqrt(mean) - 2))
        high = int(mean + 5 * np.sqrt(mean) + 3)
        k = np.arange(low, high + 1)
        drawn = np.bincount(counts.astype(np.int64) - low, minlength=k.size)[: k.size] / n
        ax.bar(k, drawn, width=1.0, color="#7fb3d5", label="minisim's counts")
        ax.plot(k, stats.poisson.pmf(k, mean), "k.", ms=4, label="Poisson(λ)")
        x = np.linspace(min(low, mean - 4 * np.sqrt(mean)) - 1, high, 400)
        ax.plot(x, stats.norm.pdf(x, mean, np.sqrt(mean)), color="0.45",
                label="λ + √λ·N(0, 1)")  # fmt: skip
        if x[0] < 0:  # the approximation's mass below zero electrons
            ax.axvline(0, color="0.8", lw=0.8)
        ax.set_title(f"λ = {mean:g} e⁻")
        ax.set_xlabel("photo-electrons")
    axes[0].set_ylabel("probability")
    axes[0].legend(fontsize=8, loc="upper right")
    fig.suptitle("Shot noise: exact Poisson draws, and the Gaussian approximation", y=1.0)
    fig.tight_layout()
    return [save(fig, out_dir, "shot_noise.png", small)]
