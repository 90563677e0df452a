"""The ziggurat standard normal sampler: its law (statistics that can fail), every branch
(fast, wedge, tail) exercised, and the agreement of its compiled and numpy backends."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from minisim.engine import normal as N
from minisim.engine.normal import standard_normal
from minisim.engine.poisson import available_backends

BACKENDS = available_backends()


def _generator(key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([11, key])))


def _check_law(draws: np.ndarray) -> None:
    n = draws.size
    # Moments within 5 standard errors: mean, variance, skewness, excess kurtosis.
    assert abs(draws.mean()) < 5 / np.sqrt(n)
    assert abs(draws.var() - 1) < 5 * np.sqrt(2 / n)
    assert abs(stats.skew(draws)) < 5 * np.sqrt(6 / n)
    assert abs(stats.kurtosis(draws)) < 5 * np.sqrt(24 / n)
    # χ² over 200 equal-width bins on [−5, 5] plus both tails (bins expecting ≥ 20).
    edges = np.concatenate([[-np.inf], np.linspace(-5, 5, 201), [np.inf]])
    observed, _ = np.histogram(draws, edges)
    expected = np.diff(stats.norm.cdf(edges)) * n
    keep = expected >= 20
    tails = [observed[~keep].sum()], [expected[~keep].sum()]
    o, e = np.concatenate([observed[keep], tails[0]]), np.concatenate([expected[keep], tails[1]])
    assert stats.chi2.sf(np.sum((o - e) ** 2 / e), o.size - 1) > 1e-4
    # The tail beyond the base layer (its own method) has the right weight: binomial, 5 σ.
    p = 2 * stats.norm.sf(N._R)
    beyond = np.count_nonzero(np.abs(draws) > N._R)
    assert abs(beyond - p * n) < 5 * np.sqrt(n * p * (1 - p))


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_law_is_standard_normal(backend):
    _check_law(standard_normal(2_000_000, _generator(1), backend))


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_law_is_standard_normal_with_many_draws(backend):
    _check_law(
        np.concatenate([standard_normal(5_000_000, _generator(k), backend) for k in (2, 3, 4)])
    )


@pytest.mark.skipif("numba" not in BACKENDS, reason="needs the fast extra (numba)")
def test_compiled_and_numpy_backends_give_identical_bytes():
    compiled = standard_normal(1_000_000, _generator(5), "numba")
    reference = standard_normal(1_000_000, _generator(5), "numpy")
    np.testing.assert_array_equal(compiled.view(np.uint64), reference.view(np.uint64))
    # Every branch ran: the tail beyond r and values decided in a wedge.
    assert np.count_nonzero(np.abs(compiled) > N._R) > 100


def test_the_draws_are_a_function_of_the_key_alone():
    a = standard_normal(10_000, _generator(6))
    b = standard_normal(10_000, _generator(6))
    c = standard_normal(10_000, _generator(7))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_the_tables_are_the_ziggurat_of_the_density():
    # Every layer (rectangle of the layer above plus its wedge) has the same area: the
    # base strip's q·f(r), each other x_i·(f(x_{i−1}) − f(x_i)); and f is the density.
    x = N._W * 2.0**53
    f = N._F
    np.testing.assert_allclose(f[1:], np.exp(-0.5 * x[1:] ** 2), rtol=1e-14)
    areas = x[1:] * (np.concatenate([[1.0], f[1:-1]]) - f[1:])
    np.testing.assert_allclose(areas, N._AREA, rtol=1e-9)
    np.testing.assert_allclose(x[0] * f[-1], N._AREA, rtol=1e-12)
