"""Elementary functions whose results do not depend on the CPU.

numpy picks an AVX-512, AVX2 or baseline implementation of ``exp``, ``log``, ``sin``,
``power`` … at run time, and the C math library behind Python's ``math`` module, Python's
``**`` and numpy's fallbacks picks FMA or plain variants: their last bits differ between
machines. Everything here is built from IEEE-754 operations that are correctly rounded on
every CPU (``+ − × ÷``, ``sqrt``, ``rint``, ``frexp``, ``ldexp``), one operation per numpy
ufunc call or Python float operation, so nothing fuses: the same inputs give the same
bytes on any machine. Accuracy: within a few units in the last place of float64.

Each function takes a scalar (fast pure-Python path, returns ``float``) or an array
(returns float64); both paths run the same operations in the same order, so they agree
bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import correlate1d

# Cody–Waite splits: the high parts have few enough bits that k·HI is exact for |k| < 2^20.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_PIO2_1 = 1.57079632673412561417e00
_PIO2_2 = 6.07710050630396597660e-11
_PIO2_3 = 2.02226624879595063154e-21
_INV_LN2 = 1.4426950408889634
_TWO_OVER_PI = 0.6366197723675814
_SQRT_HALF = 0.7071067811865476

# Taylor coefficients, lowest power first. After range reduction |r| ≤ ln2/2 (exp),
# |r| ≤ π/4 (sin, cos) and |s| ≤ 0.172 (log), these orders truncate far below 2^-53.
_EXPM1_R = [1.0 / math.factorial(n) for n in range(1, 14)]  # (e^r − 1)/r, r^0 … r^12
_SIN_R = [(-1) ** i / math.factorial(2 * i + 1) for i in range(10)]  # sin(r)/r in r²
_COS_R = [(-1) ** i / math.factorial(2 * i) for i in range(10)]  # cos(r) in r²
_ATANH_S = [1.0 / n for n in range(1, 22, 2)]  # atanh(s)/s in s²


def _horner(z, coefficients):
    """Σ c_i·z^i (lowest power first): one multiply and one add per coefficient."""
    acc = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        acc = acc * z + c
    return acc


def _rint(x: np.ndarray) -> np.ndarray:
    return np.rint(x) + 0.0  # −0 → +0, as Python's round() gives


def _is_scalar(x) -> bool:
    return isinstance(x, (float, int, np.floating, np.integer))


def _array(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


# ------------------------------------------------------------------ exp, expm1


def _exp_parts(x, rint):
    """(k, r) with x = k·ln2 + r, |r| ≤ ln2/2."""
    k = rint(x * _INV_LN2)
    return k, (x - k * _LN2_HI) - k * _LN2_LO


def exp(x):
    """e^x."""
    if _is_scalar(x):
        x = float(x)
        if x != x:
            return x
        k, r = _exp_parts(min(max(x, -746.0), 710.0), lambda v: float(round(v)))
        try:
            return math.ldexp(r * _horner(r, _EXPM1_R) + 1.0, int(k))
        except OverflowError:
            return math.inf
    x = _array(x)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        k, r = _exp_parts(np.clip(x, -746.0, 710.0), _rint)  # beyond: 0 or inf
        out = np.ldexp(r * _horner(r, _EXPM1_R) + 1.0, np.where(np.isnan(k), 0, k).astype(np.int32))
    return out


def expm1(x):
    """e^x − 1, accurate also for small |x|."""
    small_limit = 0.5 * _LN2_HI
    if _is_scalar(x):
        x = float(x)
        return x * _horner(x, _EXPM1_R) if abs(x) <= small_limit else exp(x) - 1.0
    x = _array(x)
    small = np.abs(x) <= small_limit
    near = np.where(small, x, 0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(small, near * _horner(near, _EXPM1_R), exp(x) - 1.0)


# ------------------------------------------------------------------ log, log1p, power


def _log_core(m, e):
    """log(m·2^e) for m in [√½, √2)."""
    f = m - 1.0  # exact (Sterbenz)
    s = f / (2.0 + f)
    return e * _LN2_HI + (e * _LN2_LO + 2.0 * s * _horner(s * s, _ATANH_S))


def log(x):
    """Natural logarithm (−inf at 0, NaN below 0)."""
    if _is_scalar(x):
        x = float(x)
        if not (x > 0 and x < math.inf):
            return -math.inf if x == 0 else (x if x > 0 else math.nan)
        m, e = math.frexp(x)  # x = m·2^e, m in [0.5, 1): exact
        return _log_core(m * 2.0, e - 1.0) if m < _SQRT_HALF else _log_core(m, float(e))
    x = _array(x)
    regular = (x > 0) & np.isfinite(x)
    m, e = np.frexp(np.where(regular, x, 1.0))
    low = m < _SQRT_HALF
    out = _log_core(np.where(low, m * 2.0, m), e - low.astype(np.float64))
    return np.where(regular, out, np.where(x == 0, -np.inf, np.where(x > 0, x, np.nan)))


def log1p(x):
    """log(1 + x), accurate also for small |x| (Goldberg's correction)."""
    if _is_scalar(x):
        x = float(x)
        u = 1.0 + x
        if u == 1.0 or x == math.inf:
            return x
        return log(u) * (x / (u - 1.0))
    x = _array(x)
    u = 1.0 + x
    same = u == 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(same, x, log(u) * (x / np.where(same, 1.0, u - 1.0)))
    return np.where(np.isposinf(x), x, out)


def power(base, exponent):
    """base^exponent for base ≥ 0, as exp(exponent·log base); y^0 = 1."""
    if _is_scalar(base) and _is_scalar(exponent):
        base, exponent = float(base), float(exponent)
        if exponent == 0:
            return 1.0
        return exp(exponent * log(base)) if base > 0 else (0.0 if base == 0 else math.nan)
    base, exponent = np.broadcast_arrays(_array(base), _array(exponent))
    with np.errstate(invalid="ignore", over="ignore"):
        out = exp(exponent * log(base))
    return np.where(exponent == 0, 1.0, out)


# ------------------------------------------------------------------ sin, cos


def _sin_cos_parts(x, rint):
    """(sin r, cos r, k) with x = r + k·π/2, |r| ≤ π/4 (full accuracy to |x| ~ 10^6)."""
    k = rint(x * _TWO_OVER_PI)
    r = ((x - k * _PIO2_1) - k * _PIO2_2) - k * _PIO2_3
    z = r * r
    return r * _horner(z, _SIN_R), _horner(z, _COS_R), k


def _sin_cos(x, shift: int):
    """sin(x + shift·π/2)."""
    if _is_scalar(x):
        x = float(x)
        if not math.isfinite(x):
            return math.nan
        sin_r, cos_r, k = _sin_cos_parts(x, lambda v: float(round(v)))
        return (sin_r, cos_r, -sin_r, -cos_r)[(int(k) + shift) % 4]
    x = _array(x)
    sin_r, cos_r, k = _sin_cos_parts(x, _rint)
    quadrant = (np.where(np.isfinite(k), k, 0).astype(np.int64) + shift) % 4
    return np.choose(quadrant, [sin_r, cos_r, -sin_r, -cos_r])


def sin(x):
    """sin x."""
    return _sin_cos(x, 0)


def cos(x):
    """cos x."""
    return _sin_cos(x, 1)


# ------------------------------------------------------------------ exact helpers


def hypot(a, b):
    """sqrt(a² + b²) (no overflow guard: not needed at the scales simulated)."""
    if _is_scalar(a) and _is_scalar(b):
        return math.sqrt(float(a) * float(a) + float(b) * float(b))
    a, b = _array(a), _array(b)
    return np.sqrt(a * a + b * b)


def floor_log2(x: float) -> int:
    """⌊log2 x⌋ for x > 0, exactly (from the binary exponent, no logarithm)."""
    return math.frexp(x)[1] - 1


def matmul(a, b) -> np.ndarray:
    """``a @ b`` for 2-D arrays without BLAS, whose kernels sum in a CPU-dependent order
    and may fuse multiply-adds: each element adds its products in index order."""
    a, b = np.asarray(a), np.asarray(b)
    out = np.zeros((a.shape[0], b.shape[1]), np.result_type(a, b))
    compiled = _compiled_matmul()
    if compiled is not None and a.dtype == b.dtype == out.dtype:
        compiled.matmul_into(np.ascontiguousarray(a), np.ascontiguousarray(b), out)
        return out
    for j in range(a.shape[1]):
        out += a[:, j : j + 1] * b[j]
    return out


def _compiled_matmul():
    """The compiled product, or None for numpy (:mod:`minisim.engine.backend`)."""
    from .backend import compiled

    if not compiled():
        return None
    from . import _matmul_numba

    return _matmul_numba


def gaussian_filter(values, sigma: float, mode: str = "reflect", truncate: float = 4.0):
    """:func:`scipy.ndimage.gaussian_filter` of an array (as float64), with a
    CPU-independent kernel: SciPy evaluates its taps with numpy's dispatched ``exp``."""
    out = np.asarray(values, np.float64)
    radius = int(truncate * float(sigma) + 0.5)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = exp((-0.5 / (sigma * sigma)) * (offsets * offsets))
    taps /= taps.sum()
    for axis in range(out.ndim):
        out = correlate1d(out, taps, axis=axis, mode=mode)
    return out
