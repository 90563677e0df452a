"""The one switch of the compiled kernels: its names and its messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from minisim.engine import backend


@pytest.mark.parametrize("variable", [backend.ENV, backend.FORMER_ENV])
def test_either_variable_turns_every_compiled_kernel_off(monkeypatch, variable):
    pytest.importorskip("numba")
    monkeypatch.delenv(backend.ENV, raising=False)
    monkeypatch.delenv(backend.FORMER_ENV, raising=False)
    assert backend.kernels_name() == "numba"
    monkeypatch.setenv(variable, "numpy")
    assert backend.kernels_name() == "numpy" and not backend.compiled()
    assert backend.kernels_name("numba") == "numba"  # an explicit argument wins


def test_the_new_name_wins_over_the_former_one(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setenv(backend.FORMER_ENV, "numpy")
    monkeypatch.setenv(backend.ENV, "numba")
    assert backend.compiled()


def test_an_unknown_choice_names_the_variable_the_value_and_the_choices(monkeypatch):
    monkeypatch.setenv(backend.ENV, "cuda")
    with pytest.raises(ValueError, match=r"MINISIM_KERNELS='cuda'.*auto, numba, numpy"):
        backend.compiled()
    with pytest.raises(ValueError, match=r"backend='gpu' is not a kernel choice"):
        backend.compiled("gpu")
    monkeypatch.delenv(backend.ENV)
    monkeypatch.setenv(backend.FORMER_ENV, "fast")  # only the former name set: named as such
    with pytest.raises(ValueError, match=r"MINISIM_POISSON_BACKEND='fast' is not a kernel"):
        backend.compiled()


def test_insisting_on_numba_without_it_says_how_to_install(monkeypatch):
    monkeypatch.setattr(backend, "_numba_imports", False)
    assert not backend.compiled("auto")
    with pytest.raises(ImportError, match=r'pip install ".\[fast\]"'):
        backend.compiled("numba")


def test_with_the_switch_off_a_whole_recording_never_imports_numba():
    import os
    import subprocess
    import sys

    code = (
        "import sys, dask\n"
        "from minisim import CellActivity, Composite, PlaceNeurons, Sensor, Spec, simulate\n"
        "from tests.conftest import small_acquisition\n"
        "spec = Spec(acquisition=small_acquisition(px=24, duration_s=0.5), seed=1,\n"
        "            steps=[PlaceNeurons(), CellActivity(), Composite(), Sensor()])\n"
        "with dask.config.set(scheduler='sync'):\n"
        "    simulate(spec).observed.max().compute()\n"
        "print('numba' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != backend.FORMER_ENV}
    repo = Path(__file__).resolve().parents[1]  # the code imports tests.conftest
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**env, backend.ENV: "numpy"}, cwd=repo)  # fmt: skip
    assert out.stdout.strip() == "False"
