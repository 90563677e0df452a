"""The compiled backend of :mod:`minisim.engine.normal` (imported only when numba is).

Each function repeats, for one value, the operations of its numpy twin in
:mod:`minisim.engine.normal` in the same order, so the two backends give identical bytes
(no ``fastmath``: every operation is rounded as written). The tables travel as arguments,
so numba's on-disk cache can never hold stale ones.
"""

from __future__ import annotations

import math

import numpy as np

from . import normal as N
from ._poisson_numba import _jit, _log, _unit

LAYER_MASK = np.uint64(N._LAYERS - 1)
R, INV_R = N._R, N._INV_R


@_jit
def _attempt(word, k, w):
    """(layer, signed x, accepted at once) of one ziggurat attempt."""
    layer = int(word & LAYER_MASK)
    rabs = word >> np.uint64(11)
    x = float(rabs) * w[layer]
    if (word >> np.uint64(8)) & np.uint64(1):
        x = -x
    return layer, x, rabs < k[layer]


@_jit
def _first(words, out, pending, layers, xs, k, w):
    n_pending = 0
    for i in range(words.size):
        layer, x, accepted = _attempt(words[i], k, w)
        if accepted:
            out[i] = x
        else:
            pending[n_pending], layers[n_pending], xs[n_pending] = i, layer, x
            n_pending += 1
    return n_pending


@_jit
def _retry(pending, layers, xs, words, out, next_pending, next_layers, next_xs, k, w, f):
    n_next = 0
    for j in range(pending.size):
        layer, x = layers[j], xs[j]
        a = _unit(words[3 * j])
        if layer == 0:
            xi = -_log(1.0 - a) * INV_R
            eta = -_log(1.0 - _unit(words[3 * j + 1]))
            if (eta + eta) > xi * xi:
                out[pending[j]] = math.copysign(R + xi, x)
                continue
        else:
            height = f[layer] + a * (f[layer - 1] - f[layer])
            if _log(height) < -0.5 * x * x:
                out[pending[j]] = x
                continue
            layer, x, accepted = _attempt(words[3 * j + 2], k, w)
            if accepted:
                out[pending[j]] = x
                continue
        next_pending[n_next], next_layers[n_next], next_xs[n_next] = pending[j], layer, x
        n_next += 1
    return n_next


class Rounds:
    @staticmethod
    def first(words, out):
        n = words.size
        pending, layers, xs = np.empty(n, np.intp), np.empty(n, np.intp), np.empty(n)
        m = _first(words, out, pending, layers, xs, N._K, N._W)
        return pending[:m].copy(), layers[:m].copy(), xs[:m].copy()

    @staticmethod
    def retry(pending, layers, xs, words, out):
        n = pending.size
        nxt, nl, nx = np.empty(n, np.intp), np.empty(n, np.intp), np.empty(n)
        m = _retry(pending, layers, xs, words, out, nxt, nl, nx, N._K, N._W, N._F)
        return nxt[:m], nl[:m], nx[:m]
