"""Footprints stored at several resolutions, rendered by bilinear upsampling.

A strongly defocused cell's footprint is a wide, smooth blob (σ of tens to ~150 px). Kept
at full resolution it would cover most of the canvas, and painting it into every frame
would cost a full frame of work per cell. Sampled on a grid of nodes every ``f`` pixels it
is tiny; the nodes of all cells that share ``f`` are summed per frame on that coarse grid
(a sparse matrix product). Spacings are powers of two, so each grid refines the next
coarser one: the coarsest sum is interpolated onto the next finer level's grid, added to
that level's sum, and so on down to the pixels (sparse products holding the bilinear
weights). Interpolating a bilinear surface at the nodes of a refined grid and again
between them gives the same surface, so a cell's rendered footprint is its node values
bilinearly interpolated onto the pixels, while the frame pays for one full-resolution
interpolation instead of one per level. :meth:`MultiScaleFootprints.to_dense` applies
the very same operators to each cell, so the ground truth is what was drawn.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from .backend import compiled as compiled_kernels
from .sparse import Footprints

_OPERATOR_LOCK = threading.RLock()
_CACHES = ("_operator_cache", "_column_cache")
#: Cells densified together by :meth:`MultiScaleFootprints.to_dense` (a canvas-sized
#: float32 array per cell and level in flight).
_DENSE_BATCH = 16


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

        Per level, a sparse (nodes × cells) matrix times the (cells × T) weights; from the
        coarsest level on, the running sum is interpolated onto the next finer level's grid
        (a sparse bilinear operator) and that level's sum added, down to the pixels. A
        sparse-times-dense product sums every output element over its nonzeros in a fixed
        order, one frame column at a time, so a pixel of a frame gets the same float
        operations whatever the other frames in the chunk are.

        With numba (the switch of :mod:`minisim.engine.backend`), a compiled
        pass does each level's product, interpolation and sum at once and writes the
        pixels frame-major; without it SciPy's products do the same float operations in the
        same order (identical bytes), then a transpose.
        """
        dtype = np.dtype(dtype)
        kernels = _level_kernels()
        if kernels is None:
            return self._render_scipy(weights, dtype)
        n_frames = weights.shape[1]
        pending = None  # (refinement onto this level's grid, the coarser levels' sum)
        for level, (nodes, to_finer) in zip(
            self.levels[::-1], self._operators(dtype)[::-1], strict=True
        ):
            here = None  # (footprint matrix, weights) of this level's cells
            if len(level.cells):
                here = nodes, np.ascontiguousarray(weights[level.cells], dtype=dtype)
            if to_finer is None:  # the pixels: the finest level
                break
            if here is not None or pending is not None:
                carried = np.empty((nodes.shape[0], n_frames), dtype)
                _level_sum(kernels, here, pending, carried, frame_major=False)
                pending = to_finer, carried
        else:  # no footprints at full resolution: the finest sum is refined onto the pixels
            here = None
        out = np.zeros((n_frames, self.canvas_shape[0] * self.canvas_shape[1]), dtype)
        if here is not None or pending is not None:
            _level_sum(kernels, here, pending, out, frame_major=True)
        return out.reshape(n_frames, *self.canvas_shape)

    def _render_scipy(self, weights: np.ndarray, dtype: np.dtype) -> np.ndarray:
        n_frames = weights.shape[1]
        # SciPy multiplies a single column by a different routine: always give it two.
        padded = n_frames == 1
        if padded:
            weights = np.concatenate([weights, np.zeros_like(weights)], axis=1)
        carried = None  # the coarser levels' sum, on the current level's grid
        operators = self._operators(dtype)
        for level, (nodes, to_finer) in zip(self.levels[::-1], operators[::-1], strict=True):
            if len(level.cells):
                here = nodes @ np.ascontiguousarray(weights[level.cells], dtype=dtype)
                if carried is not None:
                    here += carried
                carried = here
            if carried is not None and to_finer is not None:
                carried = to_finer @ carried
        if carried is None:
            carried = np.zeros(
                (self.canvas_shape[0] * self.canvas_shape[1], weights.shape[1]), dtype
            )
        return _transpose(carried[:, :n_frames]).reshape(n_frames, *self.canvas_shape)

    def _operators(self, dtype):
        """Per level: the (grid nodes × cells) footprint matrix and the interpolation onto
        the next finer level's grid, or onto the pixels from the finest (cached)."""
        cache = self.__dict__.setdefault("_operator_cache", {})
        if dtype.str in cache:
            return cache[dtype.str]
        # The first chunks of a threaded run all start here at once: build the operators
        # once (a few tenths of a second of CPU) while the other threads wait for them.
        with _OPERATOR_LOCK:
            return self._build_operators(cache, dtype)

    def _build_operators(self, cache: dict, dtype):
        if dtype.str not in cache:
            finer = [1] + [level.factor for level in self.levels[:-1]]
            cache[dtype.str] = [
                (
                    footprint_matrix(level.footprints, dtype),
                    None
                    if level.factor == fine
                    else refinement_matrix(level.factor, fine, self.canvas_shape, dtype),
                )
                for level, fine in zip(self.levels, finer, strict=True)
            ]
        return cache[dtype.str]

    def to_dense(self, start: int, stop: int, window, dtype=np.float32) -> np.ndarray:
        """Dense (stop − start, h, w) footprints of cells [start, stop) in a window.

        Exactly what :meth:`render` draws for each cell alone: a full-resolution cell is its
        patch; a coarse one is its node values refined grid by grid by the same operators
        (the other levels' sums it passes add exact zeros), a batch of cells at a time.
        """
        dtype = np.dtype(dtype)
        top, left, height, width = window
        out = np.zeros((stop - start, height, width), dtype)
        operators, columns = self._operators(dtype), self._columns(dtype)
        for index, level in enumerate(self.levels):
            mine = np.flatnonzero((level.cells >= start) & (level.cells < stop))
            if not len(mine):
                continue
            if level.factor == 1:  # the footprint matrix holds the patches themselves
                patches = level.footprints.to_dense(mine[0], mine[-1] + 1, window, dtype)
                out[level.cells[mine] - start] = patches
                continue
            for batch in np.array_split(mine, -(-len(mine) // _DENSE_BATCH)):
                values = columns[index][:, batch].toarray()
                if len(batch) == 1:  # two columns at least, as render gives SciPy
                    values = np.concatenate([values, np.zeros_like(values)], axis=1)
                for _, to_finer in operators[index::-1]:  # down the grids, as render does
                    if to_finer is not None:
                        values = to_finer @ values
                frames = _transpose(values[:, : len(batch)]).reshape(-1, *self.canvas_shape)
                out[level.cells[batch] - start] = frames[:, top : top + height, left : left + width]
        return out

    def _columns(self, dtype):
        """Per level, the footprint matrix by columns (CSC: a cell's nodes at once; cached)."""
        cache = self.__dict__.setdefault("_column_cache", {})
        if dtype.str not in cache:
            with _OPERATOR_LOCK:
                if dtype.str not in cache:
                    cache[dtype.str] = [nodes.tocsc() for nodes, _ in self._operators(dtype)]
        return cache[dtype.str]

    def __getstate__(self):
        # The operators are a process's own cache (5× the footprints' size): a worker that
        # receives these footprints builds its own rather than receiving them.
        return {k: v for k, v in self.__dict__.items() if k not in _CACHES}

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


def _level_sum(kernels, here, pending, out: np.ndarray, frame_major: bool) -> None:
    """out = here's matrix @ weights + pending's refinement @ sum (absent terms skipped)."""
    n_frames = out.shape[0] if frame_major else out.shape[1]
    absent = _NO_INDEX, _NO_INDEX, np.zeros(0, out.dtype), np.zeros((0, n_frames), out.dtype)
    operands = [
        absent if term is None else (term[0].indptr, term[0].indices, term[0].data, term[1])
        for term in (here, pending)
    ]
    kernels.level_sum(*operands[0], *operands[1], out, frame_major)


_NO_INDEX = np.zeros(0, np.int32)


def _level_kernels():
    """The compiled level sums, or None for SciPy (:mod:`minisim.engine.backend`)."""
    if not compiled_kernels():
        return None
    from . import _multiscale_numba

    return _multiscale_numba


def _transpose(matrix: np.ndarray, tile: int = 512) -> np.ndarray:
    """A contiguous transpose, copied in cache-sized tiles (about 3× faster than one pass)."""
    out = np.empty(matrix.shape[::-1], matrix.dtype)
    for start in range(0, matrix.shape[0], tile):
        out[:, start : start + tile] = matrix[start : start + tile].T
    return out


def footprint_matrix(footprints: Footprints, dtype) -> sparse.csr_matrix:
    """CSR (grid pixels × cells): column i holds cell i's patch at its place on the grid.

    Gathered by columns (a row-major patch lists its pixels in ascending order, so each
    column comes out sorted) and converted once, without sorting the coordinates.
    """
    height, width = footprints.canvas_shape
    pixels, values, counts = [], [], np.zeros(len(footprints), np.int64)
    for i, ((row, col), patch) in enumerate(footprints.patches()):
        if not patch.size:
            continue
        rr, cc = np.nonzero(patch)
        pixels.append((rr + row) * width + (cc + col))
        values.append(patch[rr, cc])
        counts[i] = len(rr)
    pixels = np.concatenate(pixels) if pixels else np.zeros(0, np.int64)
    values = np.concatenate(values).astype(dtype) if values else np.zeros(0, dtype)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    by_cells = sparse.csc_matrix(
        (values, pixels, indptr), shape=(height * width, len(footprints)), dtype=dtype
    )
    out = by_cells.tocsr()
    out.sort_indices()  # already in order: only records that it is
    return out


def refinement_matrix(coarse: int, fine: int, canvas_shape, dtype) -> sparse.csr_matrix:
    """CSR (fine-grid nodes × coarse-grid nodes) of bilinear weights between two node grids
    of spacings ``coarse`` > ``fine`` (powers of two; ``fine`` 1 is the pixels).

    Every fine node lies on or between coarse nodes: the last node of a grid covering
    ``length`` pixels is at or beyond ``length − 1``, and a coarser grid's last node is at
    or beyond the finer one's.
    """
    ratio = coarse // fine
    if ratio * fine != coarse or ratio & (ratio - 1):
        raise ValueError(f"node spacings {coarse} and {fine} are not powers of two apart")
    fy, fx = (node_count(length, fine) for length in canvas_shape)
    cy, cx = (node_count(length, coarse) for length in canvas_shape)
    r_lo, r_hi, r_w = _axis_weights(fy, ratio, cy)
    c_lo, c_hi, c_w = _axis_weights(fx, ratio, cx)
    node = (np.arange(fy)[:, None] * fx + np.arange(fx)[None, :]).ravel()
    rows, cols, values = [], [], []
    for r_idx, r_wt in ((r_lo, 1 - r_w), (r_hi, r_w)):
        for c_idx, c_wt in ((c_lo, 1 - c_w), (c_hi, c_w)):
            rows.append(node)
            cols.append((r_idx[:, None] * cx + c_idx[None, :]).ravel())
            values.append((r_wt[:, None] * c_wt[None, :]).ravel())
    matrix = sparse.coo_matrix(
        (np.concatenate(values).astype(dtype), (np.concatenate(rows), np.concatenate(cols))),
        shape=(fy * fx, cy * cx),
    )
    out = matrix.tocsr()  # duplicates (weight-0 neighbours at the last node) are summed
    out.eliminate_zeros()
    out.sort_indices()
    return out


def _axis_weights(length: int, factor: int, n_nodes: int):
    pos = np.arange(length)
    lower = pos // factor
    frac = (pos % factor) / factor
    upper = np.minimum(lower + 1, n_nodes - 1)
    return lower, upper, frac
