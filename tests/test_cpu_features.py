"""The same bytes on every CPU: numpy's AVX-512 / AVX2 code paths must not change a recording.

numpy picks SIMD variants of exp, log, sin … at import time; ``NPY_DISABLE_CPU_FEATURES``
makes a process behave like a machine without them. The C math library's FMA variants
(``GLIBC_TUNABLES``) and OpenBLAS's kernels (``OPENBLAS_CORETYPE``) are switched too, to
stand in for an older machine. Every variable of the golden full-chain spec must hash the
same in each such process as in this one.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from minisim import simulate
from minisim.engine import portable_math as pm

from .test_determinism import SPEC

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the environment switches are Linux-specific"
)

# Runs in a fresh interpreter: SPEC as the golden test builds it, every variable hashed.
PROBE = """
import hashlib, json, warnings
warnings.simplefilter("ignore")
import numpy as np
from tests.test_determinism import SPEC
from minisim import simulate
ds = simulate(SPEC).dataset.compute()
print(json.dumps({name: hashlib.sha256(np.ascontiguousarray(ds[name].values).tobytes())
                  .hexdigest() for name in sorted(ds.variables) if ds[name].dtype.kind != "O"
                  and ds[name].dtype.kind != "U"}))
"""


def _present_dispatch_targets(prefixes: tuple[str, ...]) -> list[str]:
    """numpy's dispatch targets this CPU has whose names start with a prefix.

    Only those may be disabled: naming a feature numpy does not dispatch on is, depending
    on the numpy version, ignored with a warning or an import error.
    """
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    return [
        name
        for name in __cpu_dispatch__
        if name.startswith(prefixes) and __cpu_features__.get(name, False)
    ]


AVX512 = ("AVX512", "X86_V4")
AVX2 = (*AVX512, "X86_V3", "AVX2", "FMA3", "F16C")


def _digests(env: dict[str, str]) -> dict[str, str]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    full_env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join([root, *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=full_env, cwd=root, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def here() -> dict[str, str]:
    ds = simulate(SPEC).dataset.compute()
    return {
        name: hashlib.sha256(np.ascontiguousarray(ds[name].values).tobytes()).hexdigest()
        for name in sorted(ds.variables)
        if ds[name].dtype.kind not in "OU"
    }


@pytest.mark.parametrize(
    "without, extra_env",
    [
        (AVX512, {}),
        (AVX2, {}),
        # An older machine all round: no FMA in the C math library, generic BLAS kernels.
        (AVX2, {"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA", "OPENBLAS_CORETYPE": "Nehalem"}),
    ],
    ids=["no-avx512", "no-avx2", "old-cpu"],
)
def test_every_variable_is_identical_without_simd_extensions(here, without, extra_env):
    disabled = _present_dispatch_targets(without)
    if not disabled and not extra_env:
        pytest.skip(f"this CPU has none of numpy's {without} dispatch targets")
    there = _digests({"NPY_DISABLE_CPU_FEATURES": " ".join(disabled), **extra_env})
    assert set(there) == set(here)
    changed = sorted(name for name in here if here[name] != there[name])
    assert not changed, f"bytes differ with {disabled} disabled: {changed}"


def test_numpy_really_dispatches_differently_when_told():
    # The switch must bite, else the test above proves nothing: numpy's own exp on this
    # machine changes some last bits with AVX-512/AVX2 off (when the CPU has them).
    disabled = _present_dispatch_targets(AVX2)
    if not disabled:
        pytest.skip("no SIMD dispatch targets on this CPU")
    code = (
        "import numpy as np, hashlib; x = np.linspace(-20, 20, 200001).astype(np.float32); "
        "print(hashlib.sha256(np.exp(x).tobytes()).hexdigest())"
    )
    run = [sys.executable, "-c", code]
    default = subprocess.run(run, capture_output=True, text=True, check=True).stdout
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(disabled)}
    baseline = subprocess.run(run, capture_output=True, text=True, check=True, env=env).stdout
    assert default != baseline


# ---------------------------------------------------------------- the portable functions


def test_portable_functions_match_the_math_library_to_a_few_ulp():
    rng = np.random.default_rng(0)
    cases = {
        "exp": (np.exp, rng.uniform(-700, 700, 5000)),
        "expm1": (np.expm1, np.concatenate([rng.uniform(-30, 30, 3000), rng.uniform(-1e-9, 1e-9, 99)])),
        "log": (np.log, rng.uniform(0, 1, 5000) * 10.0 ** rng.integers(-300, 300, 5000)),
        "log1p": (np.log1p, np.concatenate([rng.uniform(-0.99, 9, 3000), rng.uniform(-1e-9, 1e-9, 99)])),
        "sin": (np.sin, rng.uniform(-1e4, 1e4, 5000)),
        "cos": (np.cos, rng.uniform(-1e4, 1e4, 5000)),
    }  # fmt: skip
    for name, (reference, x) in cases.items():
        ours, theirs = getattr(pm, name)(x), reference(x)
        ulps = np.abs(ours - theirs) / np.spacing(np.abs(theirs))
        assert np.max(ulps) <= 6, (name, np.max(ulps))
    base, exponent = rng.uniform(0, 10, 2000), rng.uniform(-3, 3, 2000)
    ulps = np.abs(pm.power(base, exponent) / np.power(base, exponent) - 1) / 2**-52
    assert np.max(ulps) <= 16


def test_portable_scalar_and_array_paths_agree_bit_for_bit():
    x = np.random.default_rng(1).uniform(-40, 40, 2000)
    for name in ("exp", "expm1", "sin", "cos"):
        f = getattr(pm, name)
        assert f(x).tobytes() == np.array([f(float(v)) for v in x]).tobytes(), name
    for name in ("log", "log1p"):
        f, y = getattr(pm, name), np.abs(x)
        assert f(y).tobytes() == np.array([f(float(v)) for v in y]).tobytes(), name


def test_portable_special_values():
    with np.errstate(all="ignore"):
        assert pm.exp(np.array([np.inf, -np.inf, 800.0, -800.0])).tolist() == [np.inf, 0, np.inf, 0]
        assert np.isnan(pm.exp(np.nan)) and np.isnan(pm.sin(np.inf)) and np.isnan(pm.log(-1.0))
        assert pm.log(0.0) == -np.inf and pm.log(1.0) == 0.0 and pm.exp(0.0) == 1.0
        assert pm.power(0.0, 2.0) == 0.0 and pm.power(5.0, 0.0) == 1.0
        assert pm.floor_log2(8.0) == 3 and pm.floor_log2(7.999) == 2


def test_blas_free_helpers_match_their_references():
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(2)
    a, b = rng.random((30, 17)), rng.random((17, 11))
    np.testing.assert_allclose(pm.matmul(a, b), a @ b, rtol=1e-14)
    # Summed in index order, one rounding each: the explicit sum, byte for byte (the
    # compiled version when numba is installed, numpy's otherwise).
    in_order = np.zeros((30, 11))
    for j in range(17):
        in_order = in_order + a[:, j : j + 1] * b[j]
    assert pm.matmul(a, b).tobytes() == in_order.tobytes()
    image = rng.standard_normal((40, 33))
    for mode in ("reflect", "nearest"):
        np.testing.assert_allclose(
            pm.gaussian_filter(image, 2.7, mode=mode), gaussian_filter(image, 2.7, mode=mode),
            atol=1e-14,
        )  # fmt: skip


POISSON_PROBE = """
import hashlib, numpy as np
from minisim.engine.poisson import poisson, available_backends
means = np.concatenate([np.random.default_rng(0).uniform(0, 200, 100_000),
                        10 ** np.random.default_rng(1).uniform(-2, 5, 100_000)])
for backend in available_backends():
    counts = poisson(means, np.random.default_rng(2), backend=backend)
    print(backend, hashlib.sha256(counts.tobytes()).hexdigest())
"""


@pytest.mark.parametrize(
    "extra_env",
    [{}, {"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA", "OPENBLAS_CORETYPE": "Nehalem"}],
    ids=["no-avx2", "old-cpu"],
)
def test_poisson_sampler_is_identical_without_simd_extensions(extra_env):
    # Every backend, here and on a machine without AVX2/AVX-512/FMA, gives one digest.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def run(env):
        full_env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join([root, *sys.path])}
        done = subprocess.run(
            [sys.executable, "-c", POISSON_PROBE], env=full_env, cwd=root, capture_output=True,
            text=True, timeout=120, check=True,
        )  # fmt: skip
        return dict(line.split() for line in done.stdout.strip().splitlines())

    here = run({})
    there = run(
        {"NPY_DISABLE_CPU_FEATURES": " ".join(_present_dispatch_targets(AVX2)), **extra_env}
    )
    assert here == there
    assert len(set(here.values())) == 1, here
