"""The compiled level sum of :mod:`minisim.engine.multiscale` (imported only with numba).

One pass computes a grid level's ``nodes @ weights + refine @ carried`` (either term may be
absent) row by row, and at the pixels writes it straight into frame-major (T, pixels)
order: no full-resolution (pixels × T) products, no separate addition, no transpose.
Every element gets exactly the float operations of the SciPy route it replaces: SciPy's
``csr_matvecs`` starts each output element at 0 and adds ``a·x`` per nonzero of the row in
index order, in the matrix dtype; the two products are then added with numpy's ``+=``.
numba compiles without ``fastmath``, so LLVM may neither fuse a multiply-add nor reorder
a sum: vectorising across frames changes no rounding, and the bytes are those of the
SciPy route on any CPU.
"""

from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(nogil=True, cache=True, error_model="numpy")
_inline = numba.njit(nogil=True, cache=True, error_model="numpy", inline="always")

# CSR column indices are never negative: read as unsigned, they skip numba's wraparound
# of negative indices, which costs a sixth of the time of a product.

#: Pixels per tile of the frame-major pass: their (tile × T) sums stay in the L1 cache
#: until they are copied out frame by frame (32 to 256 time alike at 512 px, T = 50).
TILE = 64


@_jit
def level_sum(
    a_indptr, a_indices, a_data, weights, u_indptr, u_indices, u_data, carried, out, frame_major
):
    """Row r of ``nodes @ weights + refine @ carried`` for every grid node or pixel r.

    An absent matrix comes as empty index arrays (its dense operand is then ignored).
    ``out`` is (rows × T), or (T × rows) with ``frame_major``, the layout of the frames.
    """
    has_nodes, has_refine = a_indptr.size > 0, u_indptr.size > 0
    n_frames = out.shape[0] if frame_major else out.shape[1]
    n_rows = out.shape[1] if frame_major else out.shape[0]
    tile = TILE if frame_major else n_rows
    block = np.empty((TILE if frame_major else 0, n_frames), out.dtype)
    refined = np.empty(n_frames, out.dtype)
    for start in range(0, n_rows, max(tile, 1)):
        stop = min(start + tile, n_rows)
        for row in range(start, stop):
            acc = block[row - start] if frame_major else out[row]
            if has_nodes:  # csr_matvecs: from 0, a·x added per nonzero in index order
                for t in range(n_frames):
                    acc[t] = 0
                for jj in range(a_indptr[row], a_indptr[row + 1]):
                    a = a_data[jj]
                    x = weights[np.uint64(a_indices[jj])]
                    for t in range(n_frames):
                        acc[t] += a * x[t]
            if has_refine:
                y = refined if has_nodes else acc
                for t in range(n_frames):
                    y[t] = 0
                for jj in range(u_indptr[row], u_indptr[row + 1]):
                    a = u_data[jj]
                    x = carried[np.uint64(u_indices[jj])]
                    for t in range(n_frames):
                        y[t] += a * x[t]
                if has_nodes:  # here += carried
                    for t in range(n_frames):
                        acc[t] += refined[t]
        if frame_major:
            _copy_transposed(block, stop - start, out, start)


@_inline
def _copy_transposed(block, n_rows, out, start):
    """out[t, start + r] = block[r, t] for r < n_rows, in 8 × 8 squares (scalar copies,
    but unrolled with unsigned indices: 1.7× faster than a copy frame by frame)."""
    n_frames = out.shape[0]
    whole = n_rows - n_rows % 8
    for r0 in range(0, whole, 8):
        for t0 in range(0, n_frames - 7, 8):
            for k in range(8):
                frame = out[np.uint64(t0 + k)]
                for i in range(8):
                    frame[np.uint64(start + r0 + i)] = block[np.uint64(r0 + i), np.uint64(t0 + k)]
        for t in range(n_frames - n_frames % 8, n_frames):
            frame = out[np.uint64(t)]
            for i in range(8):
                frame[np.uint64(start + r0 + i)] = block[np.uint64(r0 + i), np.uint64(t)]
    for r in range(whole, n_rows):
        for t in range(n_frames):
            out[t, start + r] = block[r, t]
