"""Exact standard normal draws from one 64-bit word each, with the same bytes on every CPU.

numpy's ``Generator.standard_normal`` costs about four uniform draws here. This is the same
method, Marsaglia and Tsang's **ziggurat** (G. Marsaglia, W. W. Tsang, "The ziggurat method
for generating random variables", Journal of Statistical Software 5(8), 2000) with 256
layers, run compiled next to the sensor's other per-pixel work:

* a word's low 8 bits pick a layer, bit 8 the sign and its top 53 bits the abscissa
  ``x = rabs·w[layer]``; if ``rabs < k[layer]`` the point lies inside the curve and ``x`` is
  accepted at once (99.3 % of words);
* otherwise the point is in a layer's wedge (accepted when a fresh uniform height lies
  under the density, else a new attempt starts) or, in the base layer, beyond r ≈ 3.65,
  where Marsaglia's exact tail method loops until it accepts.

The wedge compares ``log(height)`` with ``−x²/2`` and the tail takes two logarithms, both
with the sampler's CPU-independent ``log``; the tables are built with
:mod:`minisim.engine.portable_math`. Every other decision is a comparison of values made
by correctly rounded operations, so the draws depend on the generator's words alone.

Words are consumed in rounds: round 0 gives value ``i`` word ``i``; the values still
undecided after a round take three fresh words each, in index order, in the next one (the
first one or two finish the pending wedge or tail test; the third starts a new attempt when
a wedge test fails). So the draws depend on the values' C order only, not on the shape.
"""

from __future__ import annotations

import numpy as np

from . import portable_math as pm
from .backend import compiled as compiled_kernels
from .poisson import _log, _unit
from .rng import raw_words

_LAYERS = 256
#: The base layer's right edge and the common area of every layer (Marsaglia & Tsang).
_R = 3.6541528853610088
_AREA = 4.92867323399e-3
_INV_R = 1.0 / _R
_TWO_53 = 2.0**53


def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(k, w, f): fast-accept bounds on the 53-bit abscissa, abscissa scales, densities."""
    k = np.zeros(_LAYERS, np.uint64)
    w = np.zeros(_LAYERS)
    f = np.zeros(_LAYERS)
    edge = previous = _R
    density = pm.exp(-0.5 * edge * edge)
    q = _AREA / density
    k[0] = np.uint64((edge / q) * _TWO_53)
    w[0], w[-1] = q / _TWO_53, edge / _TWO_53
    f[0], f[-1] = 1.0, density
    for i in range(_LAYERS - 2, 0, -1):
        edge = float(np.sqrt(-2.0 * _log(np.array([_AREA / edge + pm.exp(-0.5 * edge * edge)]))[0]))
        k[i + 1] = np.uint64((edge / previous) * _TWO_53)
        previous = edge
        f[i] = pm.exp(-0.5 * edge * edge)
        w[i] = edge / _TWO_53
    return k, w, f


_K, _W, _F = _tables()


def standard_normal(n: int, generator: np.random.Generator, backend: str | None = None):
    """``n`` draws of N(0, 1) (float64) from a keyed stream's raw 64-bit words.

    ``backend`` is "numba", "numpy" or None, as for :func:`minisim.engine.poisson.poisson`
    (the same switch); both give the same bytes.
    """
    out = np.empty(n)
    compiled = compiled_kernels(backend)
    words = raw_words(generator, compiled)
    if compiled:
        from . import _normal_numba

        rounds = _normal_numba.Rounds
    else:
        rounds = _NumpyNormal
    pending, layer, x = rounds.first(words(n), out)
    while pending.size:
        pending, layer, x = rounds.retry(pending, layer, x, words(3 * pending.size), out)
    return out


def _attempt(words: np.ndarray):
    """A ziggurat attempt per word: (layer, signed x, accepted at once)."""
    layer = (words & np.uint64(_LAYERS - 1)).astype(np.intp)
    rabs = words >> np.uint64(11)
    x = rabs.astype(np.float64) * _W[layer]
    x = np.where((words >> np.uint64(8)) & np.uint64(1), -x, x)
    return layer, x, rabs < _K[layer]


class _NumpyNormal:
    """Vectorised rounds; each line mirrors its scalar twin in ``_normal_numba``."""

    @staticmethod
    def first(words, out):
        layer, x, accepted = _attempt(words)
        out[accepted] = x[accepted]
        pending = np.flatnonzero(~accepted)
        return pending, layer[pending], x[pending]

    @staticmethod
    def retry(pending, layer, x, words, out):
        a, b, c = _unit(words[0::3]), _unit(words[1::3]), words[2::3]
        tail = layer == 0
        done = np.zeros(pending.size, bool)
        # Beyond r: x = r + ξ with ξ exponential (rate r), kept with probability e^(−ξ²/2).
        xi = -_log(1.0 - a[tail]) * _INV_R
        eta = -_log(1.0 - b[tail])
        keep = (eta + eta) > xi * xi
        tail_idx = np.flatnonzero(tail)
        value = np.copysign(_R + xi, x[tail_idx])  # the sign drawn with the layer
        out[pending[tail_idx[keep]]] = value[keep]
        done[tail_idx[keep]] = True
        # A wedge: a uniform height between f[layer] and f[layer − 1], under the density?
        wedge_idx = np.flatnonzero(~tail)
        lw, xw = layer[wedge_idx], x[wedge_idx]
        height = _F[lw] + a[wedge_idx] * (_F[lw - 1] - _F[lw])
        under = _log(height) < -0.5 * xw * xw
        out[pending[wedge_idx[under]]] = xw[under]
        done[wedge_idx[under]] = True
        # Failed wedges start a new attempt with the third word; failed tails try again.
        restart = wedge_idx[~under]
        new_layer, new_x, accepted = _attempt(c[restart])
        out[pending[restart[accepted]]] = new_x[accepted]
        done[restart[accepted]] = True
        layer, x = layer.copy(), x.copy()
        layer[restart], x[restart] = new_layer, new_x
        left = ~done
        return pending[left], layer[left], x[left]
