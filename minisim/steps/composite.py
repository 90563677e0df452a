"""Composite: each cell's emission times its footprint, summed into the tissue movie.

Footprints stay sparse: every frame chunk adds each cell's small patch, scaled per
frame, in a fixed cell order (wide, defocused footprints on coarse node grids that are
upsampled once per level). The sum for any pixel is therefore the same sequence of float
operations whatever chunk holds its frame (no BLAS contraction whose blocking could
change with chunk shape).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np

from ..engine import Scene, constant
from ..engine.multiscale import MultiScaleFootprints
from .base import StepSpec

KIND = "composite"


class Composite(StepSpec):
    """Turn per-cell emission into pixels: ``movie += Σ_i emission_i(t)·A_i(y, x)``.

    Uses the optically observed footprints when an optics step ran, otherwise the sharp
    planted ones. Without traces there is no light, and the movie stays black.
    """

    kind: Literal["composite"] = KIND
    order: ClassVar[float] = 50
    stage_name: ClassVar[str | None] = "cells_only"
    reads: ClassVar[tuple[str, ...]] = (
        "C",
        "emission",
        "footprints.planted",
        "footprints.observed",
    )
    may_provide: ClassVar[tuple[str, ...]] = ("observed",)  # nothing without traces
    writes_movie = True

    def build(self, scene: Scene) -> Scene:
        traces = scene.traces.get("C")
        if traces is None or scene.n_cells == 0:
            return scene
        emission = scene.signals.get("emission", traces)  # C·B after bleaching
        footprints = scene.footprints.get("observed")
        if footprints is None:
            footprints = MultiScaleFootprints.full_resolution(scene.footprints["planted"])
        dtype = scene.context.store_dtype
        cells = scene.pixel_map(
            ("composite",),
            composite_frames,
            scene.canvas_shape,
            dtype,
            inputs=[(emission, 1)],
            constants=[constant(footprints, "footprints"), dtype.str],
        )
        movie = cells if scene.movie is None else scene.movie + cells
        return scene.evolve(movie=movie)


def composite_frames(
    start: int, stop: int, emission: np.ndarray, footprints: MultiScaleFootprints, dtype: str
) -> np.ndarray:
    """Frames [start, stop) of ``Σ_i emission[i, t]·A_i`` on the canvas.

    ``emission`` is (cells, stop − start): C, or C·B with bleaching.
    """
    return footprints.render(emission, np.dtype(dtype))
