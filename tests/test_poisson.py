"""The exact Poisson sampler: its law (statistics that can fail), its keyed bytes, and the
agreement of its compiled and numpy backends."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from minisim.engine import poisson as P
from minisim.engine.poisson import available_backends, poisson

BACKENDS = available_backends()
#: The issue's grid: both sides of every method boundary and the far ends.
GRID = [0.01, 0.5, 3, 9.99, 10, 30, 31.99, 32, 100, 127.99, 128, 1e3, 1e4, 1e5]


def _generator(key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([7, key])))


def _chi_square_p(counts: np.ndarray, mean: float) -> float:
    """p-value of a χ² test of counts against Poisson(mean), bins pooled to ≥ 20 expected
    (the two tails are pooled into end bins, so their exact probabilities count too)."""
    n = counts.size
    lo, hi = int(stats.poisson.ppf(1e-9, mean)), int(stats.poisson.isf(1e-9, mean)) + 1
    values = np.arange(lo, hi + 1)
    expected = stats.poisson.pmf(values, mean) * n
    expected[0] = stats.poisson.cdf(lo, mean) * n
    expected[-1] = stats.poisson.sf(hi - 1, mean) * n
    observed = np.bincount(np.clip(counts.astype(np.int64), lo, hi) - lo, minlength=values.size)
    # Pool neighbouring bins until each expects ≥ 20.
    pooled_o, pooled_e, acc_o, acc_e = [], [], 0.0, 0.0
    for o, e in zip(observed, expected, strict=True):
        acc_o, acc_e = acc_o + o, acc_e + e
        if acc_e >= 20:
            pooled_o.append(acc_o), pooled_e.append(acc_e)
            acc_o = acc_e = 0.0
    if acc_e:
        pooled_o[-1] += acc_o
        pooled_e[-1] += acc_e
    pooled_o, pooled_e = np.array(pooled_o), np.array(pooled_e)
    if pooled_e.size < 2:
        return 1.0
    chi2 = np.sum((pooled_o - pooled_e) ** 2 / pooled_e)
    return float(stats.chi2.sf(chi2, pooled_e.size - 1))


def _check_law(counts: np.ndarray, mean: float) -> None:
    n = counts.size
    assert np.all(counts == np.floor(counts)) and counts.min() >= 0
    # Moments: mean, variance and skewness within 5 standard errors of Poisson's.
    sd = np.sqrt(mean)
    assert abs(counts.mean() - mean) < 5 * sd / np.sqrt(n), (mean, counts.mean())
    var_se = np.sqrt((mean + 2 * mean**2) / n)  # var of the sample variance: (μ4 − σ⁴)/n
    assert abs(counts.var() - mean) < 5 * var_se, (mean, counts.var())
    if mean >= 0.5:
        skew_se = np.sqrt(6.0 / n) * (1 + 3 / mean)  # loose bound for small means
        assert abs(stats.skew(counts) - 1 / sd) < 5 * skew_se, (mean, stats.skew(counts))
    # Exact law: χ² over every bin with its tails (p > 1e-4 per λ: a false alarm per run of
    # the whole grid is ~1e-3).
    assert _chi_square_p(counts, mean) > 1e-4, mean


@pytest.mark.parametrize("mean", GRID)
def test_the_counts_follow_poisson(mean):
    counts = poisson(np.full(100_000, mean), _generator(int(mean * 100)))
    _check_law(counts, mean)


@pytest.mark.slow
@pytest.mark.parametrize("mean", GRID)
def test_a_million_counts_follow_poisson(mean):
    counts = poisson(np.full(1_000_000, mean), _generator(int(mean * 100) + 1))
    _check_law(counts, mean)


def test_a_mixed_image_follows_poisson_pixel_by_pixel():
    # λ varies within the array (as in a frame): each λ's draws still follow its law.
    means = np.array([0.3, 12.5, 31.9, 33.0, 127.9, 131.0, 2500.0])
    counts = poisson(np.tile(means, 40_000), _generator(3)).reshape(-1, means.size)
    for j, mean in enumerate(means):
        assert _chi_square_p(counts[:, j], mean) > 1e-4, mean


def test_zero_mean_gives_zero_and_bad_means_fail_clearly():
    assert not poisson(np.zeros(1000), _generator(4)).any()
    for bad in (-1.0, np.nan, np.inf, 2e15):
        for backend in BACKENDS:
            with pytest.raises(ValueError, match="Poisson mean"):
                poisson(np.array([1.0, bad]), _generator(5), backend=backend)


def test_same_key_same_counts_whatever_the_shape():
    means = np.random.default_rng(6).uniform(0, 300, 24_000)
    flat = poisson(means, _generator(8))
    for shape in [(120, 200), (4, 30, 200), (24_000, 1)]:
        assert poisson(means.reshape(shape), _generator(8)).tobytes() == flat.tobytes()
    assert poisson(means, _generator(9)).tobytes() != flat.tobytes()


@pytest.mark.skipif(len(BACKENDS) < 2, reason="numba is not installed")
def test_compiled_and_numpy_backends_give_identical_bytes():
    rng = np.random.default_rng(10)
    means = np.concatenate(
        [
            rng.uniform(0, 140, 200_000),
            10 ** rng.uniform(-3, 6, 100_000),
            [0.0, 9.99, 10.0, 31.99, 32.0, 127.99, 128.0, 1e5, 1e12],
            np.arange(int(P.INVERSION_LIMIT) * 8) / 8.0,  # every grid row exactly
        ]
    )
    compiled = poisson(means, _generator(11), backend="numba")
    reference = poisson(means, _generator(11), backend="numpy")
    assert compiled.tobytes() == reference.tobytes()


def test_the_tables_are_what_the_compiled_kernel_was_built_for():
    if "numba" in BACKENDS:
        from minisim.engine import _poisson_numba

        assert P.tables_fingerprint() == _poisson_numba.TABLES_FINGERPRINT


def test_tabulated_cdf_matches_scipy():
    rows = [0, 1, 80, 200, int(P.INVERSION_LIMIT * P._GRID_STEPS_PER_UNIT) - 1]
    for row in rows:
        mean = row / P._GRID_STEPS_PER_UNIT
        expected = stats.poisson.cdf(np.arange(P._CDF_LENGTH), mean)
        np.testing.assert_allclose(P._GRID_CDF[row], expected, rtol=1e-13, atol=1e-15)


@pytest.mark.skipif(len(BACKENDS) < 2, reason="numba is not installed")
def test_compiled_log_reads_frexp_off_the_bits_with_the_same_result():
    # The kernel's log takes exponent and mantissa from the float's bits instead of calling
    # frexp: the same bytes as the numpy twin over every binade, subnormals and edges too.
    import numba

    from minisim.engine import _poisson_numba

    @numba.njit
    def logs(x):
        out = np.empty_like(x)
        for i in range(x.size):
            out[i] = _poisson_numba._log(x[i])
        return out

    rng = np.random.default_rng(12)
    x = np.concatenate(
        [
            2.0 ** rng.uniform(-1074, 1023, 200_000),
            np.ldexp(1.0, np.arange(-1074, 1024)),  # every power of two
            np.nextafter(np.ldexp(1.0, np.arange(-1021, 1024)), 0.0),  # just below them
            [5e-324, 2.2250738585072014e-308, 1e-310, 0.5, 1.0, 1.7976931348623157e308],
        ]
    )
    assert logs(x).tobytes() == P._log(x).tobytes()
    # Accuracy: a few ulp, absolute near log x = 0 (e·ln2 and the slot's log cancel there).
    np.testing.assert_allclose(P._log(x), np.log(x), rtol=1e-15, atol=4e-16)


def _attempts_numba():
    import numba

    from minisim.engine import _poisson_numba as PN

    @numba.njit
    def attempts(mean, u, v):
        out = np.empty(u.size)
        for i in range(u.size):
            k, candidate, q = PN._ptrs(mean, u[i], v[i])
            if k == -2.0:
                k = candidate if PN._exact_test(mean, candidate, q) else -1.0
            out[i] = k
        return out

    return attempts


def _boundary_v(mean: float, u: np.ndarray) -> np.ndarray:
    """For each u, the v at which PTRS's exact test switches (log q = log p(k))."""
    b = 0.931 + 2.53 * np.sqrt(mean)
    a = -0.059 + 0.02483 * b
    us = 0.5 - np.abs(u - 0.5)
    k = np.floor((2 * a / us + b) * (u - 0.5) + mean + 0.43)
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    log_p = stats.poisson.logpmf(k, mean)
    return np.exp(log_p) * (a / (us * us) + b) / inv_alpha


@pytest.mark.skipif(len(BACKENDS) < 2, reason="numba is not installed")
@pytest.mark.parametrize("mean", [32.0, 32.5, 128.0, 1e3, 1e4, 16383.9, 16384.0, 1e5, 1e12])
def test_ptrs_attempts_decide_alike_in_both_backends_on_every_branch(mean):
    # The compiled attempt selects its outcome without branches and leaves the few attempts
    # the squeeze cannot decide to the exact test: over the whole (u, v) square, on the fast
    # acceptance's bound and right at the exact test's boundary (where the squeeze defers),
    # its decisions equal the numpy twin's.
    rng = np.random.default_rng(13)
    b = 0.931 + 2.53 * np.sqrt(mean)
    v_r = 0.9277 - 3.6224 / (b - 2.0)
    v_edge = np.array([v_r, np.nextafter(v_r, 0.0), np.nextafter(v_r, 1.0)])
    u_edge = rng.uniform(0, 1, 2000)
    u_near = rng.uniform(0.001, 0.999, 20_000)
    v_near = _boundary_v(mean, u_near) * (1.0 + rng.uniform(-3e-6, 3e-6, u_near.size))
    v_near = np.floor(v_near * 2.0**53) / 2.0**53  # on the 53-bit grid, as drawn
    keep = (v_near > 0) & (v_near < 1)
    u = np.concatenate([np.repeat(u_edge, 3), rng.uniform(0, 1, 100_000), u_near[keep]])
    v = np.concatenate([np.tile(v_edge, 2000), rng.uniform(0, 1, 100_000), v_near[keep]])
    k, accepted = P._ptrs_numpy(np.full(u.size, mean), u, v)
    expected = np.where(accepted, k, -1.0)
    assert _attempts_numba()(mean, u, v).tobytes() == expected.tobytes()
    if mean < P._SQUEEZE_SIZE:  # the near-boundary draws do reach the exact test
        calls = []
        original = P._exact_test
        try:
            P._exact_test = lambda *args: calls.append(len(args[1])) or original(*args)
            P._ptrs_numpy(np.full(u.size, mean), u, v)
        finally:
            P._exact_test = original
        assert sum(calls) > 20


@pytest.mark.skipif("numba" not in BACKENDS, reason="needs numba")
@pytest.mark.parametrize("mean", [2.6e8, 1e12, 1e15])
def test_huge_candidates_decide_alike_in_both_backends(mean):
    # With u a grid step from 0 or 1, the candidate k exceeds int64 for λ ≳ 2.6e8: the
    # compiled attempt must keep it a float, as the numpy twin does, not convert it.
    u = np.array([2.0**-53, 1.0 - 2.0**-53, 2.0**-52, 1.0 - 2.0**-52] * 3)
    v = np.repeat([0.0, 2.0**-53, 0.5], 4)
    k, accepted = P._ptrs_numpy(np.full(u.size, mean), u, v)
    assert _attempts_numba()(mean, u, v).tobytes() == np.where(accepted, k, -1.0).tobytes()


def test_squeeze_decides_as_the_exact_law():
    # Wherever the squeeze decides, it decides as log q ≤ log p(k) with p from scipy (the
    # margin 2^-20 dwarfs the squeeze's rounding, below 1e-9): no squeeze error.
    rng = np.random.default_rng(14)
    for mean in [32.0, 128.0, 700.0, 1e4, 16000.0]:
        u, v = rng.uniform(0, 1, 200_000), rng.uniform(0, 1, 200_000)
        k, accepted = P._ptrs_numpy(np.full(u.size, mean), u, v)
        b = 0.931 + 2.53 * np.sqrt(mean)
        a = -0.059 + 0.02483 * b
        us = 0.5 - np.abs(u - 0.5)
        inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
        with np.errstate(divide="ignore"):
            log_q = np.log(v * inv_alpha / (a / (us * us) + b))
        log_p = stats.poisson.logpmf(k, mean)
        fast = (us >= 0.07) & (v <= 0.9277 - 3.6224 / (b - 2.0))
        decided = ~fast & (us >= 0.013) & (k >= 0) & (np.abs(log_q - log_p) > 1e-7)
        assert decided.sum() > 10_000
        np.testing.assert_array_equal(accepted[decided], (log_q <= log_p)[decided])


def test_log_factorial_table_and_fast_log_are_accurate():
    import mpmath

    mpmath.mp.dps = 30
    table = P._LOG_FACTORIAL_TABLE
    ks = [*range(0, 300), *range(300, P._SQUEEZE_SIZE, 97), P._SQUEEZE_SIZE - 1]
    worst = max(abs(float(mpmath.loggamma(k + 1) - mpmath.mpf(float(table[k])))) for k in ks)
    assert worst < 1e-10
    rng = np.random.default_rng(15)
    x = np.concatenate(
        [2.0 ** rng.uniform(-400, 60, 300_000), np.ldexp(1.0, np.arange(-400, 60)), [1.0]]
    )
    # Within 1e−13 + a few ulp of log x: the squeeze's margin 2^−20 is ~10⁶ times more.
    error = np.abs(P._log_fast(x) - np.log(x))
    assert np.all(error < 1e-13 + 1e-15 * np.abs(np.log(x)))
    subnormal = np.array([5e-324, 1e-310, 6.595e-320, np.nextafter(2.2250738585072014e-308, 0)])
    np.testing.assert_allclose(P._log_fast(subnormal), np.log(subnormal), rtol=1e-14)
    assert P._log_fast(np.array([0.0]))[0] == -np.inf
    if "numba" in BACKENDS:
        import numba

        from minisim.engine import _poisson_numba as PN

        @numba.njit
        def logs(x):
            return np.array([PN._log_fast_normal(x[i]) for i in range(x.size)])

        x = np.concatenate([x, [0.0]])
        assert logs(x).tobytes() == P._log_fast(x).tobytes()


def test_v_completed_from_two_words_is_uniform_on_the_53_bit_grid():
    # v's top 11 bits come from u's word (bits u does not use), the other 42 from the next.
    first = np.array([0x7FF, 0x000, 0x123, 0xFFFF_FFFF_FFFF_F800], np.uint64)
    second = np.array([0xFFFF_FFFF_FFFF_FFFF, 0, 1 << 22, 0xFFFF_FFFF_FFFF_FFFF], np.uint64)
    v = P._complete_v(first, second)
    expected = [(2**53 - 1) / 2**53, 0.0, (0x123 * 2**42 + 1) / 2**53, (2**42 - 1) / 2**53]
    assert v.tolist() == expected


_PROBE = """
import hashlib, numpy as np
from minisim.engine.poisson import poisson
rng = np.random.default_rng(16)
means = np.concatenate([rng.uniform(0, 200, 100_000), 10 ** rng.uniform(2, 5, 100_000)])
counts = poisson(means, np.random.Generator(np.random.PCG64(17)), backend="{backend}")
print(hashlib.sha256(counts.tobytes()).hexdigest())
"""


@pytest.mark.slow
@pytest.mark.skipif(len(BACKENDS) < 2, reason="numba is not installed")
def test_compiled_kernel_gives_the_same_bytes_for_a_baseline_cpu(tmp_path):
    # The compiled loops vectorise on this machine (AVX-512 or AVX2); compiled for the
    # baseline x86-64 (SSE2, no FMA) into a cache of its own, they give the same bytes.
    import os
    import subprocess
    import sys

    def digest(backend, **env):
        run = subprocess.run(
            [sys.executable, "-c", _PROBE.format(backend=backend)],
            env={**os.environ, **env}, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return run.stdout.strip()

    here = digest("numba")
    assert here == digest("numpy")
    assert here == digest(
        "numba", NUMBA_CPU_NAME="x86-64", NUMBA_CPU_FEATURES="", NUMBA_CACHE_DIR=str(tmp_path)
    )
