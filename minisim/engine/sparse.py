"""Sparse footprints: one small dense patch per cell plus its offset on the canvas.

A 512² recording with a thousand cells would need 1 GiB as a dense (cell, y, x) stack;
as patches it needs a few MB, small enough to ship inside every task of the graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Footprints:
    """Per-cell patches on a common canvas, packed into flat arrays.

    Attributes
    ----------
    offsets : (n, 2) int64
        Canvas (row, col) of each patch's top-left pixel.
    shapes : (n, 2) int64
        (height, width) of each patch; (0, 0) is an empty footprint.
    data : (Σ h·w,) float32
        Row-major patch values, concatenated in cell order.
    canvas_shape : (int, int)
        The grid the offsets refer to.
    """

    offsets: np.ndarray
    shapes: np.ndarray
    data: np.ndarray
    canvas_shape: tuple[int, int]

    @classmethod
    def from_patches(
        cls, patches: Sequence[tuple[tuple[int, int], np.ndarray]], canvas_shape
    ) -> Footprints:
        """Pack ``[((row, col), patch), ...]``, trimming each patch to its non-zero box."""
        offsets, shapes, blocks = [], [], []
        for (row, col), patch in patches:
            (row, col), patch = _trim((int(row), int(col)), np.asarray(patch, np.float32))
            offsets.append((row, col))
            shapes.append(patch.shape)
            blocks.append(patch.ravel())
        n = len(offsets)
        return cls(
            offsets=np.asarray(offsets, np.int64).reshape(n, 2),
            shapes=np.asarray(shapes, np.int64).reshape(n, 2),
            data=np.concatenate(blocks) if blocks else np.zeros(0, np.float32),
            canvas_shape=(int(canvas_shape[0]), int(canvas_shape[1])),
        )

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def starts(self) -> np.ndarray:
        """Index of each patch's first value in :attr:`data` (length n + 1)."""
        sizes = self.shapes[:, 0] * self.shapes[:, 1]
        return np.concatenate([[0], np.cumsum(sizes)])

    def patch(self, i: int) -> tuple[tuple[int, int], np.ndarray]:
        """The ((row, col), patch) of cell ``i``; the patch is a read-only view."""
        start = self.starts[i]
        h, w = self.shapes[i]
        view = self.data[start : start + h * w].reshape(h, w)
        view.flags.writeable = False
        return (int(self.offsets[i, 0]), int(self.offsets[i, 1])), view

    def patches(self):
        """Iterate ``((row, col), patch)`` in cell order."""
        starts = self.starts
        for i in range(len(self)):
            h, w = self.shapes[i]
            yield (
                (int(self.offsets[i, 0]), int(self.offsets[i, 1])),
                self.data[starts[i] : starts[i] + h * w].reshape(h, w),
            )

    def subset(self, keep) -> Footprints:
        """The footprints of the cells selected by an index array or boolean mask."""
        idx = np.arange(len(self))[keep]
        starts, sizes = self.starts, self.shapes[:, 0] * self.shapes[:, 1]
        blocks = [self.data[starts[i] : starts[i] + sizes[i]] for i in idx]
        return Footprints(
            offsets=self.offsets[idx].copy(),
            shapes=self.shapes[idx].copy(),
            data=np.concatenate(blocks) if blocks else np.zeros(0, np.float32),
            canvas_shape=self.canvas_shape,
        )

    def visible_in(self, top: int, left: int, height: int, width: int) -> np.ndarray:
        """Boolean mask of cells with at least one non-zero pixel inside a window."""
        keep = np.zeros(len(self), bool)
        for i, ((row, col), patch) in enumerate(self.patches()):
            r0, r1 = max(row, top), min(row + patch.shape[0], top + height)
            c0, c1 = max(col, left), min(col + patch.shape[1], left + width)
            if r0 < r1 and c0 < c1:
                keep[i] = bool(np.any(patch[r0 - row : r1 - row, c0 - col : c1 - col]))
        return keep

    def to_dense(self, start: int, stop: int, window, dtype=np.float32) -> np.ndarray:
        """Dense (stop − start, h, w) stack of cells [start, stop) cropped to a window.

        ``window`` is ``(top, left, height, width)`` in canvas pixels.
        """
        top, left, height, width = window
        out = np.zeros((stop - start, height, width), dtype)
        starts = self.starts
        for k, i in enumerate(range(start, stop)):
            row, col = self.offsets[i]
            h, w = self.shapes[i]
            patch = self.data[starts[i] : starts[i] + h * w].reshape(h, w)
            r0, r1 = max(row, top), min(row + h, top + height)
            c0, c1 = max(col, left), min(col + w, left + width)
            if r0 < r1 and c0 < c1:
                out[k, r0 - top : r1 - top, c0 - left : c1 - left] = patch[
                    r0 - row : r1 - row, c0 - col : c1 - col
                ]
        return out

    def __dask_tokenize__(self):
        return (
            "minisim.Footprints",
            self.canvas_shape,
            self.offsets.tobytes(),
            self.shapes.tobytes(),
            self.data.tobytes(),
        )


def _trim(offset: tuple[int, int], patch: np.ndarray):
    """Shrink a patch to the bounding box of its non-zero pixels."""
    if patch.size == 0 or not np.any(patch):
        return offset, np.zeros((0, 0), np.float32)
    rows = np.flatnonzero(np.any(patch != 0, axis=1))
    cols = np.flatnonzero(np.any(patch != 0, axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return (offset[0] + int(r0), offset[1] + int(c0)), np.ascontiguousarray(patch[r0:r1, c0:c1])
