"""The compiled backend of :mod:`minisim.engine.poisson` (imported only when numba is).

Each function repeats, for one value, the operations of its numpy twin in
:mod:`minisim.engine.poisson` in the same order, so the two backends give identical bytes.
numba compiles without ``fastmath``: LLVM may neither fuse a multiply-add nor reorder a
sum, so every operation is rounded as written on any CPU.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .poisson import (
    _CDF_LENGTH,
    _EXP_SMALL,
    _GRID_CDF,
    _GRID_GUIDE,
    _GRID_STEPS_PER_UNIT,
    _GUIDE_BUCKETS,
    _HALF_LOG_2PI,
    _INV_CENTRE,
    _LN2,
    _LOG1P_SMALL,
    _LOG_CENTRE,
    _LOG_FACTORIAL,
    _LOG_SLOTS,
    _STIRLING,
    _STIRLING_FROM,
    _TO_UNIT,
    INVERSION_LIMIT,
    MAX_MEAN,
)

_EXP_SMALL_C = np.array(_EXP_SMALL)
_LOG1P_SMALL_C = np.array(_LOG1P_SMALL)
_STIRLING_C = np.array(_STIRLING)
_jit = numba.njit(nogil=True, cache=True, error_model="numpy")


@_jit
def _horner(z, coefficients):
    acc = coefficients[-1]
    for i in range(len(coefficients) - 2, -1, -1):
        acc = acc * z + coefficients[i]
    return acc


@_jit
def _log(x):
    if x == 0.0:
        return -np.inf
    m, e = math.frexp(x)
    slot = int(math.floor(m * (2.0 * _LOG_SLOTS)) - _LOG_SLOTS)
    r = m * _INV_CENTRE[slot] - 1.0
    return e * _LN2 + (_LOG_CENTRE[slot] + r * _horner(r, _LOG1P_SMALL_C))


@_jit
def _exact_test(mean, k, q):
    if k < _STIRLING_FROM:
        return _log(q) <= (k * _log(mean) - mean) - _LOG_FACTORIAL[int(k)]
    x = k + 1.0
    inv = 1.0 / x
    series = _horner(inv * inv, _STIRLING_C) * inv
    rhs = ((k * _log(mean / x) + (x - mean)) - _HALF_LOG_2PI) - series
    return _log(q * math.sqrt(x)) <= rhs


@_jit
def _unit(word):
    return float(word >> np.uint64(11)) * _TO_UNIT


@_jit
def _invert(mean, u, u2):
    row = math.floor(mean * _GRID_STEPS_PER_UNIT)
    rest = mean - row * (1.0 / _GRID_STEPS_PER_UNIT)
    j = int(row)
    k = int(_GRID_GUIDE[j, int(math.floor(u * _GUIDE_BUCKETS))])
    while u >= _GRID_CDF[j, k] and k < _CDF_LENGTH - 1:
        k += 1
    count = float(k)
    p = _horner(-rest, _EXP_SMALL_C)
    cdf = p
    step = 0.0
    while u2 >= cdf:
        step += 1.0
        count += 1.0
        p = p * (rest / step)
        grown = cdf + p
        if grown == cdf:
            break
        cdf = grown
    return count


@_jit
def _ptrs(mean, u, v):
    """One attempt: k, or −1 when rejected."""
    root = math.sqrt(mean)
    b = 0.931 + 2.53 * root
    a = -0.059 + 0.02483 * b
    v_r = 0.9277 - 3.6224 / (b - 2.0)
    centred = u - 0.5
    us = 0.5 - abs(centred)
    if us >= 0.07 and v <= v_r:
        return math.floor(((2.0 * a) / us + b) * centred + mean + 0.43)
    if us == 0.0 or (us < 0.013 and v > us):
        return -1.0
    k = math.floor(((2.0 * a) / us + b) * centred + mean + 0.43)
    if k < 0.0:
        return -1.0
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    q = (v * inv_alpha) / (a / (us * us) + b)
    return k if _exact_test(mean, k, q) else -1.0


@_jit
def _first(mean, words, out, rejected):
    n_rejected = 0
    for i in range(mean.size):
        m = mean[i]
        if not (m >= 0.0 and m <= MAX_MEAN):
            return -1 - i
        u = _unit(words[2 * i])
        v = _unit(words[2 * i + 1])
        if m < INVERSION_LIMIT:
            out[i] = _invert(m, u, v)
        else:
            k = _ptrs(m, u, v)
            if k < 0.0:
                rejected[n_rejected] = i
                n_rejected += 1
            else:
                out[i] = k
    return n_rejected


@_jit
def _retry(mean, pending, words, out, rejected):
    n_rejected = 0
    for j in range(pending.size):
        i = pending[j]
        k = _ptrs(mean[i], _unit(words[2 * j]), _unit(words[2 * j + 1]))
        if k < 0.0:
            rejected[n_rejected] = i
            n_rejected += 1
        else:
            out[i] = k
    return n_rejected


class Rounds:
    @staticmethod
    def first(mean, words, out):
        rejected = np.empty(mean.size, np.intp)
        n = _first(mean, words, out, rejected)
        if n < 0:
            from .poisson import _invalid

            raise _invalid(mean)
        return rejected[:n].copy()

    @staticmethod
    def retry(mean, pending, words, out):
        rejected = np.empty(pending.size, np.intp)
        return rejected[: _retry(mean, pending, words, out, rejected)]
