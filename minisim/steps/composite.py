"""Composite: each cell's emission times its footprint, summed into the tissue movie.

Footprints stay sparse: every frame chunk adds each cell's small patch, scaled per
frame, in cell order. The sum for any pixel is therefore the same sequence of float
operations whatever chunk holds its frame (no BLAS contraction whose blocking could
change with chunk shape).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..engine import Footprints, Scene, constant, map_ranges
from .base import StepSpec

KIND = "composite"


class Composite(StepSpec):
    """Turn per-cell emission into pixels: ``movie += Σ_i emission_i(t)·A_i(y, x)``.

    Uses the optically observed footprints when an optics step ran, otherwise the sharp
    planted ones. Without traces there is no light, and the movie stays black.
    """

    kind: Literal["composite"] = KIND
    writes_movie = True

    def build(self, scene: Scene) -> Scene:
        emission = scene.traces.get("C")
        if emission is None or scene.n_cells == 0:
            return scene
        if "bleach" in scene.traces:
            emission = emission * scene.traces["bleach"]
        footprints = scene.footprints.get("observed", scene.footprints["planted"])
        dtype = np.dtype(scene.spec.output.store_dtype)
        cells = map_ranges(
            scene.layer_name("composite"),
            composite_frames,
            scene.frame_chunks,
            scene.canvas_shape,
            dtype,
            inputs=[(emission, 1)],
            constants=[constant(footprints, "footprints"), dtype.str],
        )
        movie = cells if scene.movie is None else scene.movie + cells
        return scene.evolve(movie=movie)


def composite_frames(
    start: int, stop: int, emission: np.ndarray, footprints: Footprints, dtype: str
) -> np.ndarray:
    """Frames [start, stop) of ``Σ_i emission[i, t]·patch_i`` on the canvas.

    ``emission`` is (cells, stop − start); cells are added in index order.
    """
    out = np.zeros((stop - start, *footprints.canvas_shape), dtype)
    weights = emission.astype(dtype, copy=False)
    for i, ((row, col), patch) in enumerate(footprints.patches()):
        h, w = patch.shape
        if h:
            out[:, row : row + h, col : col + w] += weights[i][:, None, None] * patch.astype(dtype)
    return out
