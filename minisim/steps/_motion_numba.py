"""The compiled bilinear shift of :mod:`minisim.steps.brain_motion` (imported only with numba).

One pass per frame instead of numpy's nine (six products, three sums, each a frame-sized
temporary), with the same operations in the same order and the frame's own dtype, so
the bytes are those of the numpy version; no ``fastmath``, so LLVM neither fuses a
multiply-add nor reorders a sum.
"""

from __future__ import annotations

import numba

_jit = numba.njit(nogil=True, cache=True, error_model="numpy")


@_jit
def bilinear(source, row, col, weights, out):
    """out[i, j] = (s[r, c]·kx + s[r, c+1]·tx)·ky + (s[r+1, c]·kx + s[r+1, c+1]·tx)·ty
    with r = row + i, c = col + j and (kx, tx, ky, ty) = ``weights`` in the frame's dtype
    (``source`` C-contiguous, so rows vectorize). The weights come as an array, not as
    numpy scalars: numba types arrays in C, but scalars through Python's singledispatch,
    whose cache every ABC registration clears (costly while a fresh process imports)."""
    keep_x, take_x, keep_y, take_y = weights[0], weights[1], weights[2], weights[3]
    height, width = out.shape
    for i in range(height):
        above, below, dest = source[row + i, col:], source[row + i + 1, col:], out[i]
        for j in range(width):
            upper = above[j] * keep_x + above[j + 1] * take_x
            lower = below[j] * keep_x + below[j + 1] * take_x
            dest[j] = upper * keep_y + lower * take_y
