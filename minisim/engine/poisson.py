"""Exact Poisson draws at about the cost of a Gaussian one, with the same bytes on every CPU.

``Generator.poisson`` costs several times a normal draw and evaluates its acceptance tests
with the C library's ``log``, whose last bits differ between CPUs (FMA or not). This
sampler draws Poisson(λ) for every λ ≥ 0 (no normal approximation at any λ):

* λ < 128: **inversion**, split as λ = j/8 + δ: Poisson(j/8) by inverting a tabulated
  CDF (a guide table makes the search one or two comparisons), plus an independent
  Poisson(δ), δ < 1/8, by sequential search from ``e^-δ`` (0 after one comparison 88 %
  of the time) with the uniform left over from the first inversion;
* λ ≥ 128: Hörmann's **transformed rejection with squeeze (PTRS)**, W. Hörmann, "The
  transformed rejection method for generating Poisson random variables", Insurance:
  Mathematics and Economics 12 (1993), with three changes that keep its law and cut its
  cost:

  - **one word for most values**: u takes a word's top 53 bits and v's top 11 bits are the
    same word's low 11 (which u does not use); v's other 42 bits come from a second word
    only when needed. Hörmann's fast acceptance (us ≥ 0.07 and v ≤ v_r) holds whatever
    those 42 bits when (v_top + 1)/2¹¹ ≤ v_r: 68 % (λ = 128) to 79 % (λ = 10⁴) of
    values
    are drawn from one word;
  - **a squeeze in log** instead of the exact test: for λ and k below 2¹⁴, log p(k) ≈
    k·log λ − λ − log k! with log k! from a table and a short-series log (three dependent
    steps after a 1024-slot table). Its rounding errors stay below 1e−8 (table < 1e−10,
    log < 1e−13 per call times k ≤ 2¹⁴, a few ulp of terms ≤ 2·10⁵), so when
    log q − log p(k) is farther than 2⁻²⁰ from 0 its sign is that of the exact
    arithmetic's;
    closer (about one attempt in a million, and every attempt with λ or k ≥ 2¹⁴) the
    exact test decides: log q ≤ k log λ − λ − log k!, with Stirling's series for k ≥ 30
    so that the large terms cancel before rounding;
  - **no unpredictable branches**: the compiled rounds compute every outcome and select
    one (LLVM vectorises those loops); the values still undecided are listed and handled
    by the next round.

Every decision (each comparison with ``F(k)``, the squeeze, the exact test) is computed
from IEEE operations that are correctly rounded on every CPU (``+ − × ÷ sqrt floor
frexp``), one at a time in a fixed order; the tables are built with
:mod:`minisim.engine.portable_math`, ``e^-δ`` and ``log`` are short series (a few ulp). So the
counts are a function of λ and the generator's raw 64-bit words alone.

Random numbers are consumed in rounds. Round 0: value ``i`` takes word ``i`` (its u, and
v's top bits from λ = 128 on). Then, while values are pending: each value whose v needs its
lower bits takes one word, in index order, and its attempt is decided; each rejected value
starts a new attempt with one word, in index order (again accepted at once or pending).
Inversion needs no second word: given the
table's answer k, ``(u − F(k−1)) / (F(k) − F(k−1))`` is again uniform on [0, 1) and
independent of k, and it drives the search for Poisson(δ). (Its resolution is
2⁻⁵³/P(k), so the law of the counts differs from Poisson(λ) by less than a few hundred
times 2⁻⁵³ in total variation: floating-point rounding.) So the counts depend on the
values in C order only, not on the array's shape, and any frame keyed by its own generator
gives the same counts in any chunk.

Two backends run the same operations: a compiled kernel when numba is installed
(``pip install "minisim[fast]"``; 10–15 ns per value below λ = 128, 7–9 ns from 128 to
10⁴, see docs/performance.md) and vectorised numpy otherwise (several times slower). They
give identical bytes; the tests check it, branch by branch, and with the kernel compiled
for a baseline x86-64 CPU. The compiled kernel's ``log`` reads frexp's exponent and
mantissa off the float's bits (no C-library call).
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from . import backend
from . import portable_math as pm
from .rng import raw_words

#: Below this mean, table inversion; from it on, transformed rejection. (PTRS is valid from
#: λ = 10 and, for a constant λ, faster than the inversion from ~25; but in frames whose
#: means straddle the limit, the branch between the methods and rejection's extra round
#: cost more than that: the pixels of typical recordings sit at 7–70.)
INVERSION_LIMIT = 128.0
#: Largest mean accepted: counts stay exact integers in float64 far beyond any full well.
MAX_MEAN = 1e15

_TO_UNIT = 2.0**-53  # 53 random bits → a double in [0, 1), as numpy's Generator.random
_BELOW_ONE = 1.0 - 2.0**-53  # the largest double below 1
#: (1 − δ) − this is below the computed e^−δ for every δ in [0, 1/8): 1 − δ < e^−δ, the
#: rounding of 1 − δ is ≤ 2^−54 and the series' error a few 2^−54 (checked in the tests).
_SURELY_BELOW_EXP = 2.0**-50
_HALF_LOG_2PI = 0.91893853320467274178  # log(2π)/2
#: PTRS's v takes its top bits from the low bits of u's word (u uses the top 53), so most
#: values are accepted from that one word; the second word only completes v when needed.
_V_LOW_BITS = 11
_V_LOW_MASK = (1 << _V_LOW_BITS) - 1
#: 2^11·v_r·(b − 2) = 2^11·0.9277·(b − 2) − 2^11·3.6224 (scaling by 2^11 is exact).
_V_R_SCALED_SLOPE = 0.9277 * 2.0**_V_LOW_BITS
_V_R_SCALED_OFFSET = 3.6224 * 2.0**_V_LOW_BITS
_LN2 = 0.6931471805599453

# Tables (built once from portable_math, so they are the same on every CPU):
#: Below INVERSION_LIMIT, λ = λ_j + δ with λ_j = j/8 on a grid and 0 ≤ δ < 1/8, and
#: Poisson(λ) = Poisson(λ_j) + Poisson(δ) exactly (independent parts): the first is
#: inverted in a tabulated CDF, the second (0 with probability ≥ 88 %) by sequential
#: search from e^−δ.
_GRID_STEPS_PER_UNIT = 8.0
#: CDF rows long enough that P(N ≥ length) < 1e−22 even at λ = 128, far below rounding.
_CDF_LENGTH = 272
#: Guide buckets: the search for u starts at the first k whose CDF exceeds ⌊256u⌋/256.
_GUIDE_BUCKETS = 256
#: e^−δ = Σ (−δ)ⁿ/n!, n ≤ 12: truncation below 1e−21 for δ < 1/8.
_EXP_SMALL = [1.0 / math.factorial(n) for n in range(13)]


def _grid_tables() -> tuple[np.ndarray, np.ndarray]:
    """The CDF of Poisson(j/8) for every grid point below the limit, and its guide."""
    mean = np.arange(int(INVERSION_LIMIT * _GRID_STEPS_PER_UNIT)) / _GRID_STEPS_PER_UNIT
    cdf = np.empty((mean.size, _CDF_LENGTH))
    term = total = pm.exp(-mean)
    cdf[:, 0] = total
    for k in range(1, _CDF_LENGTH):  # element-wise across rows: sequential in k per row
        term = term * (mean / k)
        total = total + term
        cdf[:, k] = total
    edges = np.arange(_GUIDE_BUCKETS) / _GUIDE_BUCKETS
    # The first k with F(k) > the bucket's lower edge.
    guide = np.array([np.searchsorted(row, edges, side="right") for row in cdf])
    return cdf, np.minimum(guide, _CDF_LENGTH - 1).astype(np.uint16)


_GRID_CDF, _GRID_GUIDE = _grid_tables()
#: log x = e·ln 2 + log(1/INV_CENTRE[j]) + log1p(m·INV_CENTRE[j] − 1), m = x/2^e in [½, 1),
#: j the top 7 bits of m below its leading one, so |m·INV_CENTRE − 1| ≤ 2^−8.
_LOG_SLOTS = 128
_INV_CENTRE = 1.0 / ((np.arange(_LOG_SLOTS) + _LOG_SLOTS + 0.5) / (2.0 * _LOG_SLOTS))
_LOG_CENTRE = -pm.log(_INV_CENTRE)
#: log1p(r) = Σ (−1)ⁿ⁺¹ rⁿ/n, n ≤ 7, as r·Σ(...): truncation below 2^−64 for |r| ≤ 2^−8.
_LOG1P_SMALL = [(-1.0) ** n / (n + 1) for n in range(7)]
#: log k! for k < 30 (from the exact integer, so no CPU-dependent lgamma), then Stirling.
_STIRLING_FROM = 30
_LOG_FACTORIAL = np.array([pm.log(float(math.factorial(k))) for k in range(_STIRLING_FROM)])
# Stirling series of log Γ(x) − ((x − ½)log x − x + ½log 2π), in 1/x² after a factor 1/x:
# B₂ₙ / (2n(2n−1)); at x ≥ 30 the first omitted term is below 1e−19.
_STIRLING = [1.0 / 12.0, -1.0 / 360.0, 1.0 / 1260.0, -1.0 / 1680.0, 1.0 / 1188.0]
#: PTRS's squeeze in log: for λ and k below this size, log p(k) ≈ k·log λ − λ − log k!
#: with log k! from a table, within _SQUEEZE_MARGIN (rounding errors stay below 1e−8, see
#: _squeeze_table); only the attempts closer than that to the boundary take the exact test.
_SQUEEZE_SIZE = 2**14
_SQUEEZE_MARGIN = 2.0**-20


def _squeeze_table() -> np.ndarray:
    """log k! for k < _SQUEEZE_SIZE: exact below _STIRLING_FROM, else Stirling's series
    (truncation < 1e−19) with portable logs (a few ulp): errors < 1e−10 (checked in tests)."""
    x = np.arange(_STIRLING_FROM, _SQUEEZE_SIZE) + 1.0
    inv = 1.0 / x
    series = pm._horner(inv * inv, _STIRLING) * inv
    large = (((x - 0.5) * pm.log(x)) - x) + (_HALF_LOG_2PI + series)
    return np.concatenate([_LOG_FACTORIAL, large])


_LOG_FACTORIAL_TABLE = _squeeze_table()
#: The squeeze's log: x = 2^e·m, m in [1, 2), c_j the centre of m's slot (its top 10
#: fraction bits), log x = e·ln 2 + log c_j + log1p(r), r = m/c_j − 1, |r| ≤ 2^−11, and
#: log1p(r) ≈ r − r²/2 + r³/3 (error ≤ r⁴/4 ≤ 2^−46): three dependent steps, not seven.
_FAST_LOG_SLOTS = 1024
_FAST_INV_CENTRE = 1.0 / (1.0 + (np.arange(_FAST_LOG_SLOTS) + 0.5) / _FAST_LOG_SLOTS)
_FAST_LOG_CENTRE = -pm.log(_FAST_INV_CENTRE)
_THIRD = 1.0 / 3.0


def tables_fingerprint() -> str:
    """A digest of every table and constant of the sampler (the same on every CPU)."""
    digest = hashlib.sha256()
    parts = (
        _GRID_CDF, _GRID_GUIDE, np.array(_EXP_SMALL), _INV_CENTRE, _LOG_CENTRE,
        np.array(_LOG1P_SMALL), _LOG_FACTORIAL, np.array(_STIRLING), _LOG_FACTORIAL_TABLE,
        _FAST_INV_CENTRE, _FAST_LOG_CENTRE,
        np.array([INVERSION_LIMIT, _GRID_STEPS_PER_UNIT, _CDF_LENGTH, _GUIDE_BUCKETS,
                  _LOG_SLOTS, _STIRLING_FROM, MAX_MEAN, _TO_UNIT, _LN2, _HALF_LOG_2PI,
                  _BELOW_ONE, _SURELY_BELOW_EXP, _V_LOW_BITS, _V_R_SCALED_SLOPE,
                  _V_R_SCALED_OFFSET, _SQUEEZE_SIZE, _SQUEEZE_MARGIN, _FAST_LOG_SLOTS,
                  _THIRD]),
    )  # fmt: skip
    for part in parts:
        digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()[:16]


def poisson(mean: np.ndarray, generator: np.random.Generator, backend: str | None = None):
    """Poisson counts (float64, exact integers) with the given means, any shape.

    Parameters
    ----------
    mean : array of float
        Expected counts, each finite and in [0, 1e15].
    generator : numpy.random.Generator
        The keyed stream to consume (its bit generator's raw 64-bit words).
    backend : "numba", "numpy" or None
        None picks numba when installed (and ``MINISIM_KERNELS`` does not say
        otherwise). Both give the same bytes.
    """
    mean = np.ascontiguousarray(mean, dtype=np.float64)
    flat = mean.reshape(-1)
    out = np.empty_like(flat)
    rounds = _backend(backend)
    words = raw_words(generator, rounds is not _NumpyRounds)
    pending, held = rounds.first(flat, words(flat.size), out)
    while pending.size:
        rejected = rounds.complete(flat, pending, held, words(pending.size), out)
        pending, held = rounds.restart(flat, rejected, words(rejected.size), out)
    return out.reshape(mean.shape)


def available_backends() -> list[str]:
    """The backends that can run here: always numpy, numba when installed."""
    return ["numba", "numpy"] if backend.compiled("auto") else ["numpy"]


def backend_name(name: str | None = None) -> str:
    """ "numba" or "numpy": the backend :func:`poisson` runs with this ``backend`` argument
    (the switch of every compiled kernel, :mod:`minisim.engine.backend`)."""
    return backend.kernels_name(name)


def _backend(name: str | None):
    return _numba_rounds() if backend.compiled(name) else _NumpyRounds


def _invalid(mean: np.ndarray) -> ValueError:
    bad = mean[~((mean >= 0) & (mean <= MAX_MEAN))][0]
    return ValueError(
        f"Poisson mean {bad!r} is not a finite number in [0, {MAX_MEAN:g}]: the expected "
        "photo-electrons must be non-negative and finite"
    )


# ------------------------------------------------------------------ numpy backend
# Each function mirrors, operation for operation, its scalar twin in _poisson_numba.


def _horner(z, coefficients):
    acc = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        acc = acc * z + c
    return acc


def _log(x: np.ndarray) -> np.ndarray:
    """log x for x > 0 finite (table slot × short series; a few ulp); log 0 = −inf."""
    m, e = np.frexp(x)
    slot = (np.floor(m * (2.0 * _LOG_SLOTS)) - _LOG_SLOTS).astype(np.intp)
    slot = np.clip(slot, 0, _LOG_SLOTS - 1)  # x = 0 gives m = 0
    r = m * _INV_CENTRE[slot] - 1.0
    out = e * _LN2 + (_LOG_CENTRE[slot] + r * _horner(r, _LOG1P_SMALL))
    return np.where(x == 0.0, -np.inf, out)


def _log_fast(x: np.ndarray) -> np.ndarray:
    """log x within 1e−13 for x ≥ 0 normal or 0 (−inf), for the squeeze only."""
    m, e = np.frexp(x)  # m in [½, 1): 2m in [1, 2) exactly
    slot = (np.floor(m * (2.0 * _FAST_LOG_SLOTS)) - _FAST_LOG_SLOTS).astype(np.intp)
    slot = np.clip(slot, 0, _FAST_LOG_SLOTS - 1)  # x = 0 gives m = 0
    r = (m * 2.0) * _FAST_INV_CENTRE[slot] - 1.0
    out = ((e - 1.0) * _LN2 + _FAST_LOG_CENTRE[slot]) + r * (1.0 - r * (0.5 - r * _THIRD))
    return np.where(x == 0.0, -np.inf, out)


def _exact_test(mean, k, q):
    """Hörmann's exact acceptance: log q ≤ k log λ − λ − log k!, rearranged for large k
    (Stirling) so that the big terms cancel before rounding and only two logs are taken."""
    out = np.empty(k.shape, bool)
    small = k < _STIRLING_FROM
    if small.any():
        m, k_s = mean[small], k[small]
        out[small] = _log(q[small]) <= (k_s * _log(m) - m) - _LOG_FACTORIAL[k_s.astype(np.intp)]
    large = ~small
    if large.any():
        m, x = mean[large], k[large] + 1.0
        inv = 1.0 / x
        series = _horner(inv * inv, _STIRLING) * inv
        rhs = ((k[large] * _log(m / x) + (x - m)) - _HALF_LOG_2PI) - series
        out[large] = _log(q[large] * np.sqrt(x)) <= rhs
    return out


def _unit(words: np.ndarray) -> np.ndarray:
    return (words >> np.uint64(11)).astype(np.float64) * _TO_UNIT


def _split(mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row j, remainder δ) with λ = j/8 + δ; δ is exact (Sterbenz)."""
    row = np.floor(mean * _GRID_STEPS_PER_UNIT)
    return row.astype(np.intp), mean - row * (1.0 / _GRID_STEPS_PER_UNIT)


def _invert_numpy(mean: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Poisson(j/8) by table inversion of u, plus Poisson(δ) by sequential search with the
    uniform recycled from u."""
    row, rest = _split(mean)
    k = _GRID_GUIDE[row, np.floor(u * _GUIDE_BUCKETS).astype(np.intp)].astype(np.intp)
    active = np.flatnonzero(u >= _GRID_CDF[row, k])
    while active.size:
        k[active] += 1
        active = active[
            (k[active] < _CDF_LENGTH - 1) & (u[active] >= _GRID_CDF[row[active], k[active]])
        ]
    counts = k.astype(np.float64)
    below = np.where(k > 0, _GRID_CDF[row, np.maximum(k - 1, 0)], 0.0)  # F(k − 1) ≤ u
    with np.errstate(divide="ignore", invalid="ignore"):
        u2 = (u - below) / (_GRID_CDF[row, k] - below)
    # Rounding may reach 1 (or 0/0 past a saturated CDF): the search below must stop.
    u2 = np.where(u2 < _BELOW_ONE, u2, _BELOW_ONE)
    # Poisson(δ): the smallest n with u2 < F(n), summed from e^−δ (stops if F stops growing).
    # Most u2 lie below a lower bound of e^−δ, so that e^−δ need not be computed for them:
    # the counts are exactly those of the full search.
    unsure = np.flatnonzero(u2 >= (1.0 - rest) - _SURELY_BELOW_EXP)
    rest, u2 = rest[unsure], u2[unsure]
    p = _horner(-rest, _EXP_SMALL)
    cdf = p.copy()
    active = np.flatnonzero(u2 >= cdf)
    extra = np.zeros(unsure.size)
    step = 0.0
    while active.size:
        step += 1.0
        extra[active] += 1.0
        p_a = p[active] * (rest[active] / step)
        grown = cdf[active] + p_a
        moving = grown != cdf[active]
        p[active], cdf[active] = p_a, grown
        active = active[moving & (u2[active] >= grown)]
    counts[unsure] += extra
    return counts


def _low_bits(words: np.ndarray) -> np.ndarray:
    """The word's low bits that _unit drops, as a float: the top bits of PTRS's v."""
    return (words & np.uint64(_V_LOW_MASK)).astype(np.float64)


def _complete_v(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """v in [0, 1) on the 2^-53 grid: its top 11 bits are the first word's low bits (which
    u does not use), its other 42 the second word's top bits; exact in float64."""
    top = (first & np.uint64(_V_LOW_MASK)) << np.uint64(53 - _V_LOW_BITS)
    return (top | (second >> np.uint64(64 - (53 - _V_LOW_BITS)))).astype(np.float64) * _TO_UNIT


def _ptrs_candidate(mean: np.ndarray, u: np.ndarray):
    """PTRS's hat parameter b, us = ½ − |u − ½| and the candidate k for u."""
    b = 0.931 + 2.53 * np.sqrt(mean)
    a = -0.059 + 0.02483 * b
    centred = u - 0.5
    us = 0.5 - np.abs(centred)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.floor(((2.0 * a) / us + b) * centred + mean + 0.43)
    return b, us, k


def _ptrs_sure_numpy(mean: np.ndarray, u: np.ndarray, v_top: np.ndarray):
    """PTRS's k for u, and whether its fast acceptance (us ≥ 0.07, v ≤ v_r) holds whatever
    v's lower 42 bits: v < (v_top + 1)/2^11 ≤ v_r, compared without v_r's division."""
    b, us, k = _ptrs_candidate(mean, u)
    b2 = b - 2.0
    sure = (us >= 0.07) & ((v_top + 1.0) * b2 <= _V_R_SCALED_SLOPE * b2 - _V_R_SCALED_OFFSET)
    return k, sure


def _ptrs_numpy(mean: np.ndarray, u: np.ndarray, v: np.ndarray):
    """One full PTRS attempt per value: (k, accepted)."""
    b, us, k = _ptrs_candidate(mean, u)
    a = -0.059 + 0.02483 * b  # as the candidate's (the same operations)
    b2 = b - 2.0
    fast = (us >= 0.07) & (v * b2 <= 0.9277 * b2 - 3.6224)
    hopeless = (us == 0.0) | ((us < 0.013) & (v > us)) | (k < 0.0)
    # q = v/(α(a/us² + b)), 1/α = 1.1239 + 1.1328/(b − 3.4), with one division.
    b34, us2 = b - 3.4, us * us
    numerator = (v * us2) * (1.1239 * b34 + 1.1328)
    denominator = b34 * (a + b * us2)
    tabled = (mean < _SQUEEZE_SIZE) & (k < _SQUEEZE_SIZE)
    slot = np.clip(k, 0.0, _SQUEEZE_SIZE - 1.0).astype(np.intp)
    log_p = (k * _log_fast(mean) - mean) - _LOG_FACTORIAL_TABLE[slot]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = numerator / denominator
    gap = _log_fast(q) - log_p
    yes = fast | (~hopeless & tabled & (gap <= -_SQUEEZE_MARGIN))
    no = ~fast & (hopeless | (tabled & (gap > _SQUEEZE_MARGIN)))
    accepted = yes
    unsure = np.flatnonzero(~yes & ~no)
    if unsure.size:
        accepted[unsure] = _exact_test(mean[unsure], k[unsure], q[unsure])
    return k, accepted


class _NumpyRounds:
    @staticmethod
    def first(mean, words, out):
        """Round 0: one word per value; returns the values PTRS could not yet decide, with
        their words."""
        if not ((mean >= 0) & (mean <= MAX_MEAN)).all():
            raise _invalid(mean)
        small = mean < INVERSION_LIMIT
        out[small] = _invert_numpy(mean[small], _unit(words[small]))
        return _NumpyRounds.restart(mean, np.flatnonzero(~small), words[~small], out)

    @staticmethod
    def restart(mean, idx, words, out):
        """A new PTRS attempt for each value, from one word each (in index order)."""
        k, sure = _ptrs_sure_numpy(mean[idx], _unit(words), _low_bits(words))
        out[idx[sure]] = k[sure]
        return idx[~sure], words[~sure]

    @staticmethod
    def complete(mean, pending, held, words, out):
        """Each undecided value completes its v with one word, in index order; returns the
        rejected ones."""
        k, accepted = _ptrs_numpy(mean[pending], _unit(held), _complete_v(held, words))
        out[pending[accepted]] = k[accepted]
        return pending[~accepted]


# ------------------------------------------------------------------ numba backend

_NUMBA = None


def _numba_rounds():
    """The compiled backend, built on first use (importing numba costs ~0.3 s)."""
    global _NUMBA
    if _NUMBA is None:
        from . import _poisson_numba

        _NUMBA = _poisson_numba.Rounds
    return _NUMBA
