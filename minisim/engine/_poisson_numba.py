"""The compiled backend of :mod:`minisim.engine.poisson` (imported only when numba is).

Each function repeats, for one value, the operations of its numpy twin in
:mod:`minisim.engine.poisson` in the same order, so the two backends give identical bytes.
Above the inversion limit the rounds are split into loops without data-dependent
branches (an attempt from one word for every value; the decision for every value whose v
needs its second word), which LLVM vectorises, and scalar loops that list the values
still pending; the rare exact tests run in the latter.
numba compiles without ``fastmath``: LLVM may neither fuse a multiply-add nor reorder a
sum, so every operation is rounded as written on any CPU.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from . import poisson as P

# Small tables are compiled in as constants (the grid CDF and guide are too large for
# numba's cache, so they travel as arguments), and numba's on-disk cache keys a compiled
# function on THIS file only: a table changed in poisson.py would keep running stale. So
# this file names the tables it was compiled for, and changing them means changing it.
TABLES_FINGERPRINT = "fd19b62ed0cca289"
if P.tables_fingerprint() != TABLES_FINGERPRINT:
    raise RuntimeError(
        "the Poisson tables changed: set TABLES_FINGERPRINT in _poisson_numba.py to "
        f"{P.tables_fingerprint()!r} so numba recompiles"
    )

LIMIT, STEPS_PER_UNIT, CDF_LENGTH = P.INVERSION_LIMIT, P._GRID_STEPS_PER_UNIT, P._CDF_LENGTH
GUIDE_BUCKETS, LOG_SLOTS, STIRLING_FROM = P._GUIDE_BUCKETS, P._LOG_SLOTS, P._STIRLING_FROM
MAX_MEAN, TO_UNIT, LN2, HALF_LOG_2PI = P.MAX_MEAN, P._TO_UNIT, P._LN2, P._HALF_LOG_2PI
BELOW_ONE, SURELY_BELOW_EXP = P._BELOW_ONE, P._SURELY_BELOW_EXP
LOG_FACTORIAL = P._LOG_FACTORIAL
INV_CENTRE, LOG_CENTRE = P._INV_CENTRE, P._LOG_CENTRE
EXP_SMALL, LOG1P_SMALL = np.array(P._EXP_SMALL), np.array(P._LOG1P_SMALL)
STIRLING = np.array(P._STIRLING)
SQUEEZE_SIZE, SQUEEZE_MARGIN = float(P._SQUEEZE_SIZE), P._SQUEEZE_MARGIN
#: A compiled-in constant (not an argument): LLVM then knows no store can alias it and
#: vectorises the loops that look it up.
LOG_FACTORIAL_TABLE = P._LOG_FACTORIAL_TABLE

_jit = numba.njit(nogil=True, cache=True, error_model="numpy")

_EXPONENT_BITS, _FRACTION_BITS = np.uint64(0x7FF), np.uint64(0x000F_FFFF_FFFF_FFFF)
#: The table slot is the fraction's top log2(LOG_SLOTS) bits.
_SLOT_SHIFT = np.uint64(52 - (LOG_SLOTS.bit_length() - 1))
assert 1 << (LOG_SLOTS.bit_length() - 1) == LOG_SLOTS, "LOG_SLOTS must be a power of two"
_HALF_BITS = np.uint64(0x3FE0_0000_0000_0000)  # the exponent field of [½, 1)
V_LOW_MASK = np.uint64(P._V_LOW_MASK)
FAST_LOG_SLOTS, THIRD = P._FAST_LOG_SLOTS, P._THIRD
FAST_INV_CENTRE, FAST_LOG_CENTRE = P._FAST_INV_CENTRE, P._FAST_LOG_CENTRE
_FAST_SLOT_SHIFT = np.uint64(52 - (FAST_LOG_SLOTS.bit_length() - 1))
_ONE_BITS = np.uint64(0x3FF0_0000_0000_0000)  # the exponent field of [1, 2)
V_SHIFT_TOP = np.uint64(53 - P._V_LOW_BITS)
V_SHIFT_REST = np.uint64(64 - (53 - P._V_LOW_BITS))
V_R_SCALED_SLOPE, V_R_SCALED_OFFSET = P._V_R_SCALED_SLOPE, P._V_R_SCALED_OFFSET


@intrinsic
def _bits(typingctx, x):
    """The IEEE-754 bits of a float64 (frexp without a call into the C library)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.uint64(types.float64), codegen


@intrinsic
def _from_bits(typingctx, word):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.uint64), codegen


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
    bits = _bits(x)
    biased = (bits >> np.uint64(52)) & _EXPONENT_BITS
    if biased == 0:  # subnormal: frexp normalises it
        m, e = math.frexp(x)
        slot = np.intp(math.floor(m * (2.0 * LOG_SLOTS)) - LOG_SLOTS)
    else:  # the same m, e and slot as frexp and floor give, read off the bits
        e = np.intp(biased) - 1022
        m = _from_bits((bits & _FRACTION_BITS) | _HALF_BITS)
        slot = np.intp((bits >> _SLOT_SHIFT) & np.uint64(LOG_SLOTS - 1))
    r = m * INV_CENTRE[slot] - 1.0
    return e * LN2 + (LOG_CENTRE[slot] + r * _horner(r, LOG1P_SMALL))


@_jit
def _log_fast_normal(x):
    """The numpy twin's _log_fast for x normal or 0 (all the squeeze meets: v on the 2^−53
    grid and us ≥ 2^−53 keep q normal), without branches so that its loops vectorise."""
    bits = _bits(x)
    e = float(np.intp((bits >> np.uint64(52)) & _EXPONENT_BITS) - 1023)
    slot = np.intp((bits >> _FAST_SLOT_SHIFT) & np.uint64(FAST_LOG_SLOTS - 1))
    r = _from_bits((bits & _FRACTION_BITS) | _ONE_BITS) * FAST_INV_CENTRE[slot] - 1.0
    out = (e * LN2 + FAST_LOG_CENTRE[slot]) + r * (1.0 - r * (0.5 - r * THIRD))
    return -np.inf if x == 0.0 else out


@_jit
def _exact_test(mean, k, q):
    if k < STIRLING_FROM:
        return _log(q) <= (k * _log(mean) - mean) - LOG_FACTORIAL[int(k)]
    x = k + 1.0
    inv = 1.0 / x
    series = _horner(inv * inv, STIRLING) * inv
    rhs = ((k * _log(mean / x) + (x - mean)) - HALF_LOG_2PI) - series
    return _log(q * math.sqrt(x)) <= rhs


@_jit
def _unit(word):
    return float(word >> np.uint64(11)) * TO_UNIT


@_jit
def _invert(mean, u, grid_cdf, grid_guide):
    row = math.floor(mean * STEPS_PER_UNIT)
    rest = mean - row * (1.0 / STEPS_PER_UNIT)
    j = int(row)
    k = int(grid_guide[j, int(math.floor(u * GUIDE_BUCKETS))])
    while u >= grid_cdf[j, k] and k < CDF_LENGTH - 1:
        k += 1
    count = float(k)
    below = grid_cdf[j, max(k - 1, 0)] * min(k, 1)  # F(k − 1) ≤ u, 0 for k = 0: no branch
    u2 = (u - below) / (grid_cdf[j, k] - below)
    if not u2 < BELOW_ONE:  # rounding may reach 1 (or 0/0 past a saturated CDF)
        u2 = BELOW_ONE
    if u2 < (1.0 - rest) - SURELY_BELOW_EXP:  # u2 < e^−δ for sure: Poisson(δ) is 0
        return count
    p = _horner(-rest, EXP_SMALL)
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
    """One full attempt: (outcome, k, q), outcome k, −1 when rejected, −2 when the squeeze leaves the
    decision to the exact test (about one attempt in a million; the caller runs it)."""
    b = 0.931 + 2.53 * math.sqrt(mean)
    a = -0.059 + 0.02483 * b
    centred = u - 0.5
    us = 0.5 - abs(centred)
    k = np.floor(((2.0 * a) / us + b) * centred + mean + 0.43)  # a float, as in numpy
    return _ptrs_decide(mean, b, us, k, v)


@_jit
def _ptrs_decide(mean, b, us, k, v):
    """The decision on k = PTRS's candidate for u (us = ½ − |u − ½|, b from λ, as the
    round that drew u computed them): (outcome, k, q), outcome as for _ptrs."""
    numerator, denominator = _q_parts(b, us, v)
    outcome = _ptrs_outcome(mean, b, us, k, v)
    return outcome, k, numerator / denominator


@_jit
def _q_parts(b, us, v):
    """q = v/(α(a/us² + b)) with 1/α = 1.1239 + 1.1328/(b − 3.4), as one ratio (v on the
    2^−53 grid and us ≥ 2^−53 keep q a normal number, or 0 when v = 0)."""
    a = -0.059 + 0.02483 * b
    b34, us2 = b - 3.4, us * us
    return (v * us2) * (1.1239 * b34 + 1.1328), b34 * (a + b * us2)


@numba.njit(nogil=True, cache=True, error_model="numpy", inline="always")
def _ptrs_outcome(mean, b, us, k, v):
    """k, −1 (rejected) or −2 (for the exact test). Every outcome is computed and selected
    without branches, so the loop around it vectorises and nothing is mispredicted (inlined
    by numba: as a call, LLVM does not vectorise the loop)."""
    b2 = b - 2.0
    fast = (us >= 0.07) & (v * b2 <= 0.9277 * b2 - 3.6224)
    hopeless = (us == 0.0) | ((us < 0.013) & (v > us)) | (k < 0.0)
    numerator, denominator = _q_parts(b, us, v)
    tabled = (mean < SQUEEZE_SIZE) & (k < SQUEEZE_SIZE)
    slot = int(min(max(k, 0.0), SQUEEZE_SIZE - 1.0))
    log_p = (k * _log_fast_normal(mean) - mean) - LOG_FACTORIAL_TABLE[slot]
    gap = _log_fast_normal(numerator / denominator) - log_p
    yes = fast | ((not hopeless) & tabled & (gap <= -SQUEEZE_MARGIN))
    no = (not fast) & (hopeless | (tabled & (gap > SQUEEZE_MARGIN)))
    outcome = -2.0
    outcome = -1.0 if no else outcome
    outcome = k if yes else outcome
    return outcome


@_jit
def _complete_v(first, second):
    top = (first & V_LOW_MASK) << V_SHIFT_TOP
    return float(top | (second >> V_SHIFT_REST)) * TO_UNIT


@_jit
def _ptrs_sure(mean, u, v_top):
    """k for u, and whether PTRS accepts it whatever v's bits below its top 11."""
    root = math.sqrt(mean)
    b = 0.931 + 2.53 * root
    a = -0.059 + 0.02483 * b
    centred = u - 0.5
    us = 0.5 - abs(centred)
    k = np.floor(((2.0 * a) / us + b) * centred + mean + 0.43)  # a float, as in numpy
    b2 = b - 2.0
    sure = (us >= 0.07) & ((v_top + 1.0) * b2 <= V_R_SCALED_SLOPE * b2 - V_R_SCALED_OFFSET)
    return k, sure


@_jit
def _count_rejection(mean):
    """How many values take transformed rejection, or −1 − i for an invalid mean at i."""
    n_rejection = 0
    for i in range(mean.size):
        m = mean[i]
        if not (m >= 0.0 and m <= MAX_MEAN):
            return -1 - i
        n_rejection += m >= LIMIT
    return n_rejection


@_jit
def _invert_all(mean, words, out, grid_cdf, grid_guide):
    """Round 0 when every value is below the limit: inversion."""
    for i in range(mean.size):
        out[i] = _invert(mean[i], _unit(words[i]), grid_cdf, grid_guide)


@_jit
def _first_mixed(mean, words, out, listed, held_mean, grid_cdf, grid_guide):
    """Round 0 when values lie on both sides of the limit, in one pass without temporaries:
    inversion, or an attempt from one word; the undecided values' words move to the front
    of ``words`` in place, their indices to ``listed`` and means to ``held_mean``."""
    n = 0
    for i in range(mean.size):
        m = mean[i]
        w = words[i]
        if m < LIMIT:
            out[i] = _invert(m, _unit(w), grid_cdf, grid_guide)
        else:
            k, sure = _ptrs_sure(m, _unit(w), float(w & V_LOW_MASK))
            out[i] = k  # an undecided value's entry is overwritten by a later round
            listed[n] = i
            words[n] = w
            held_mean[n] = m
            n += not sure
    return n


@_jit
def _start_ptrs(mean, words, k_out, undecided):
    """A PTRS attempt for every value from one word each: its candidate k, and whether v
    needs more than its top bits (a branch-free loop that LLVM vectorises)."""
    for i in range(mean.size):
        w = words[i]
        k, sure = _ptrs_sure(mean[i], _unit(w), float(w & V_LOW_MASK))
        k_out[i] = k
        undecided[i] = not sure


@_jit
def _list_undecided(words, undecided, idx, mean, listed, held_mean):
    """Lists the undecided values: their indices (``idx[i]``, or ``i`` if idx is empty) in
    ``listed``, their means in ``held_mean``, their words at the front of ``words`` (in
    place: entry n is written after entry i ≥ n is read); returns how many."""
    direct = idx.size == 0
    n = 0
    for i in range(words.size):
        listed[n] = i if direct else idx[i]
        words[n] = words[i]
        held_mean[n] = mean[i]
        n += undecided[i]
    return n


@_jit
def _decide_pending(mean, held, words, outcome):
    """Each pending value's attempt completed with one word: u's k and b recomputed (the
    same values as in the round that drew u), then decided; a branch-free loop over
    contiguous arrays that LLVM vectorises."""
    for j in range(mean.size):
        m = mean[j]
        w = held[j]
        b = 0.931 + 2.53 * math.sqrt(m)
        a = -0.059 + 0.02483 * b
        centred = _unit(w) - 0.5
        us = 0.5 - abs(centred)
        k = np.floor(((2.0 * a) / us + b) * centred + m + 0.43)  # a float, as in numpy
        outcome[j] = _ptrs_outcome(m, b, us, k, _complete_v(w, words[j]))


@_jit
def _settle(mean, pending, held, words, out, outcome):
    """Writes the accepted counts, runs the exact test where the squeeze deferred (about
    one attempt in a million), and lists the rejected values at the front of ``pending``
    in place; returns how many."""
    n_rejected = 0
    for j in range(pending.size):
        i = pending[j]
        k = outcome[j]
        if k == -2.0:
            w = held[j]
            _, candidate, q = _ptrs(mean[j], _unit(w), _complete_v(w, words[j]))
            k = candidate if _exact_test(mean[j], candidate, q) else -1.0
        out[i] = k  # a rejected value's entry is overwritten by a later round
        pending[n_rejected] = i
        n_rejected += k < 0.0
    return n_rejected


class Rounds:
    """The rounds of :func:`minisim.engine.poisson.poisson`; the values still pending
    travel as (indices, (their first words, their means)) between kernels."""

    @staticmethod
    def first(mean, words, out):
        # ``words`` is this round's own array: it is reused for the undecided values' words.
        n = _count_rejection(mean)
        if n < 0:
            raise P._invalid(mean)
        if n == 0:
            _invert_all(mean, words, out, P._GRID_CDF, P._GRID_GUIDE)
            return _NO_INDEX, (words[:0], np.empty(0))
        if n == mean.size:  # every value by rejection: the vectorised round
            return Rounds._start(mean, words, _NO_INDEX, out)
        listed, held_mean = np.empty(n, np.intp), np.empty(n)
        n = _first_mixed(mean, words, out, listed, held_mean, P._GRID_CDF, P._GRID_GUIDE)
        return listed[:n], (words[:n], held_mean[:n])

    @staticmethod
    def restart(mean, idx, words, out):
        return Rounds._start(mean[idx], words, idx, out)

    @staticmethod
    def _start(mean, words, idx, out):
        # ``words`` is this round's own array: it is reused for the undecided values' words.
        k = out if idx is _NO_INDEX else np.empty(mean.size)
        undecided = np.empty(mean.size, np.bool_)
        _start_ptrs(mean, words, k, undecided)
        if idx is not _NO_INDEX:
            out[idx] = k  # the undecided values' entries are overwritten by later rounds
        listed, held_mean = np.empty(mean.size, np.intp), np.empty(mean.size)
        n = _list_undecided(words, undecided, idx, mean, listed, held_mean)
        return listed[:n], (words[:n], held_mean[:n])

    @staticmethod
    def complete(mean, pending, held, words, out):
        held_words, held_mean = held
        outcome = np.empty(pending.size)
        _decide_pending(held_mean, held_words, words, outcome)
        return pending[: _settle(held_mean, pending, held_words, words, out, outcome)]


_NO_INDEX = np.empty(0, np.intp)
