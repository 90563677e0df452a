"""The compiled twin of :func:`minisim.engine.portable_math.matmul` (imported only with numba).

Each output element adds its products in index order, one rounding per product and per
sum, exactly as the numpy version does (no ``fastmath``: LLVM neither fuses a
multiply-add nor reorders the sum, so the bytes are the same on every CPU); it runs the
whole product in one call instead of one numpy pass per inner index.
"""

from __future__ import annotations

import numba

_jit = numba.njit(nogil=True, cache=True, error_model="numpy")


@_jit
def matmul_into(a, b, out):
    """out (zeros) += a @ b, element (i, k) summed over j = 0, 1, … in order."""
    for i in range(a.shape[0]):
        row = out[i]
        for j in range(a.shape[1]):
            factor, other = a[i, j], b[j]
            for k in range(b.shape[1]):
                row[k] = row[k] + factor * other[k]
