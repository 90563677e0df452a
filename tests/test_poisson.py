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
GRID = [0.01, 0.5, 3, 9.99, 10, 30, 100, 127.99, 128, 1e3, 1e4, 1e5]


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
    means = np.array([0.3, 12.5, 127.9, 131.0, 2500.0])
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
            [0.0, 9.99, 10.0, 127.99, 128.0, 1e5, 1e12],
            np.arange(1024) / 8.0,  # every grid row exactly
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
    rows = [0, 1, 80, 500, 1023]
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


@pytest.mark.skipif(len(BACKENDS) < 2, reason="numba is not installed")
@pytest.mark.parametrize("mean", [128.0, 128.5, 1e3, 1e4, 1e5, 1e12])
def test_ptrs_shortcut_on_v_decides_as_the_full_test(mean):
    # The kernel skips v_r's division when v is below v_r at λ = 128; at and around both
    # bounds, and over the whole (u, v) square, its decisions equal the numpy twin's.
    import numba

    from minisim.engine import _poisson_numba as PN

    v_r = 0.9277 - 3.6224 / ((0.931 + 2.53 * np.sqrt(mean)) - 2.0)
    edges = [PN.V_R_AT_LIMIT, v_r]
    v_edge = np.concatenate([[e, np.nextafter(e, 0.0), np.nextafter(e, 1.0)] for e in edges])
    rng = np.random.default_rng(13)
    u = np.concatenate(
        [np.repeat(rng.uniform(0, 1, 2000), v_edge.size), rng.uniform(0, 1, 100_000)]
    )
    v = np.concatenate([np.tile(v_edge, 2000), rng.uniform(0, 1, 100_000)])

    @numba.njit
    def attempts(mean, u, v):
        return np.array([PN._ptrs(mean, u[i], v[i]) for i in range(u.size)])

    k, accepted = P._ptrs_numpy(np.full(u.size, mean), u, v)
    expected = np.where(accepted, k, -1.0)
    assert attempts(mean, u, v).tobytes() == expected.tobytes()
