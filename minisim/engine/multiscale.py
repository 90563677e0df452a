"""Footprints stored at several resolutions, rendered by bilinear upsampling.

A strongly defocused cell's footprint is a wide, smooth blob (σ of tens to ~150 px). Kept
at full resolution it would cover most of the canvas, and painting it into every frame
would cost a full frame of work per cell. Sampled on a grid of nodes every ``f`` pixels it
is tiny; the nodes of all cells that share ``f`` are summed per frame on that coarse grid
and the sum is upsampled once. The rendered footprint of a cell is exactly its node values
bilinearly interpolated, and :meth:`MultiScaleFootprints.to_dense` returns exactly that,
so the ground truth is what was drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .sparse import Footprints


def node_count(length: int, factor: int) -> int:
    """Nodes at 0, f, 2f, … needed to cover pixels 0 … length − 1."""
    return -(-(length - 1) // factor) + 1


@dataclass(frozen=True, eq=False)
class ScaleLevel:
    """The cells drawn at one resolution: patches on a node grid with spacing ``factor``."""

    factor: int
    cells: np.ndarray  # global cell index of each patch, ascending
    footprints: Footprints  # offsets and canvas_shape in node units


@dataclass(frozen=True, eq=False)
class MultiScaleFootprints:
    """Per-cell footprints split into resolution levels (``factor`` 1 is full resolution)."""

    levels: tuple[ScaleLevel, ...]
    canvas_shape: tuple[int, int]
    n_cells: int

    @classmethod
    def full_resolution(cls, footprints: Footprints) -> MultiScaleFootprints:
        level = ScaleLevel(1, np.arange(len(footprints)), footprints)
        return cls((level,), footprints.canvas_shape, len(footprints))

    @classmethod
    def from_levels(
        cls, patches: Sequence[tuple[int, tuple[int, int], np.ndarray]], canvas_shape
    ) -> MultiScaleFootprints:
        """Group ``[(factor, (node_row, node_col), node_patch), ...]`` (one per cell) by factor."""
        by_factor: dict[int, list[int]] = {}
        for i, (factor, _, _) in enumerate(patches):
            by_factor.setdefault(int(factor), []).append(i)
        levels = []
        for factor in sorted(by_factor):
            cells = np.asarray(by_factor[factor], np.int64)
            grid = (node_count(canvas_shape[0], factor), node_count(canvas_shape[1], factor))
            fp = Footprints.from_patches([patches[i][1:] for i in cells], grid)
            levels.append(ScaleLevel(factor, cells, fp))
        return cls(tuple(levels), (int(canvas_shape[0]), int(canvas_shape[1])), len(patches))

    def __len__(self) -> int:
        return self.n_cells

    def peaks(self) -> np.ndarray:
        """Each cell's brightest rendered value (bilinear interpolation never exceeds its nodes)."""
        out = np.zeros(self.n_cells)
        for level in self.levels:
            for j, (_, patch) in enumerate(level.footprints.patches()):
                out[level.cells[j]] = patch.max() if patch.size else 0.0
        return out

    def render(self, weights: np.ndarray, dtype) -> np.ndarray:
        """``Σ_i weights[i, t]·A_i`` for each t: an array (T, height, width).

        Levels are drawn finest first, cells in index order within a level, so each
        pixel of a frame sees the same float operations whatever the other frames are.
        """
        n_frames = weights.shape[1]
        out = np.zeros((n_frames, *self.canvas_shape), dtype)
        for level in self.levels:
            target = (
                out
                if level.factor == 1
                else np.zeros((n_frames, *level.footprints.canvas_shape), dtype)
            )
            w = weights[level.cells].astype(dtype, copy=False)
            for j, ((row, col), patch) in enumerate(level.footprints.patches()):
                h, wd = patch.shape
                if h:
                    target[:, row : row + h, col : col + wd] += w[j][:, None, None] * patch.astype(
                        dtype
                    )
            if level.factor > 1:
                out += upsample(target, level.factor, self.canvas_shape)
        return out

    def to_dense(self, start: int, stop: int, window, dtype=np.float32) -> np.ndarray:
        """Dense (stop − start, h, w) footprints of cells [start, stop) in a window."""
        top, left, height, width = window
        out = np.zeros((stop - start, height, width), dtype)
        for level in self.levels:
            fp = level.footprints
            for j in np.flatnonzero((level.cells >= start) & (level.cells < stop)):
                if level.factor == 1:
                    dense = fp.to_dense(j, j + 1, window, dtype)[0]
                else:
                    nodes = fp.to_dense(j, j + 1, (0, 0, *fp.canvas_shape), dtype)
                    full = upsample(nodes, level.factor, self.canvas_shape)[0]
                    dense = full[top : top + height, left : left + width]
                out[level.cells[j] - start] = dense
        return out

    def __dask_tokenize__(self):
        return (
            "minisim.MultiScaleFootprints",
            self.canvas_shape,
            self.n_cells,
            [
                (lv.factor, lv.cells.tobytes(), lv.footprints.__dask_tokenize__())
                for lv in self.levels
            ],
        )


def _axis_weights(length: int, factor: int, n_nodes: int):
    pos = np.arange(length)
    lower = pos // factor
    frac = (pos % factor) / factor
    upper = np.minimum(lower + 1, n_nodes - 1)
    return lower, upper, frac


def upsample(nodes: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear interpolation of (T, ny, nx) node values onto (T, *shape) pixels.

    Node k sits on pixel k·factor, so node values are reproduced exactly.
    """
    r_lo, r_hi, r_w = _axis_weights(shape[0], factor, nodes.shape[1])
    c_lo, c_hi, c_w = _axis_weights(shape[1], factor, nodes.shape[2])
    dtype = nodes.dtype
    c_w = c_w.astype(dtype)
    r_w = r_w.astype(dtype)[:, None]
    rows = nodes[:, :, c_lo] * (1 - c_w) + nodes[:, :, c_hi] * c_w
    return rows[:, r_lo, :] * (1 - r_w) + rows[:, r_hi, :] * r_w
