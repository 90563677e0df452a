"""Conformance checks every step must pass, built-in or from another package.

Subclass :class:`StepConformance` in a test module and set ``step`` to a configured
instance of your step; a test runner (pytest, unittest-style discovery of ``test_*``
methods) then checks that the step

* builds lazily (nothing computes while ``simulate()`` builds the graph),
* gives the same bytes whatever the chunking,
* gives the same bytes on the threaded and the synchronous scheduler,
* never writes into the arrays its kernels receive,
* provides what it declares, with the dims and dtypes its quantities declare, and
* is documented (a docstring, and an entry in the steps reference for built-ins).

::

    from minisim.conformance import StepConformance
    from minisim_flicker import Flicker

    class TestFlicker(StepConformance):
        step = Flicker(amplitude=0.1)
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import dask
import numpy as np

from .acquisition import Acquisition, ImageSensor, Optics
from .engine.read_only import read_only_inputs
from .spec import Spec
from .steps import CellActivity, Composite, PlaceNeurons
from .steps.base import StepSpec
from .steps.registry import providers_of


class _NothingComputes(dask.callbacks.Callback):
    def _start_state(self, dsk, state):
        raise AssertionError("a dask computation ran while simulate() built the graph")


class StepConformance:
    """Checks one configured step in a small recording (see the module docstring)."""

    #: The step under test (configured so that it is active).
    step: ClassVar[StepSpec]
    #: A small acquisition: 32 × 32 px at 1 µm/px, 1.5 s at 20 fps.
    acquisition: ClassVar[Acquisition] = Acquisition(
        fps=20.0,
        duration_s=1.5,
        optics=Optics(magnification=8.0),
        image_sensor=ImageSensor(n_px_height=32, n_px_width=32, pixel_pitch_um=8.0),
    )
    #: The reference page that must name built-in steps (by their kind).
    steps_reference: ClassVar[Path] = (
        Path(__file__).resolve().parents[1] / "docs" / "reference" / "steps.md"
    )

    def spec(self) -> Spec:
        """The step with cells, traces and a composite, plus whatever it needs."""
        steps = {s.kind: s for s in (PlaceNeurons(), CellActivity(), Composite())}
        for need in type(self.step).needed_quantities():
            provider = providers_of(need)[0]
            steps.setdefault(provider.kind_name(), provider())
        steps[self.step.kind] = self.step
        return Spec(acquisition=self.acquisition, seed=3, steps=list(steps.values()))

    def _bytes(self, chunks=None, scheduler="threads") -> dict[str, bytes]:
        from .simulate import simulate

        with dask.config.set(scheduler=scheduler):
            ds = simulate(self.spec(), chunks=chunks).dataset.compute()
        return {name: np.ascontiguousarray(ds[name].values).tobytes() for name in ds.variables}

    def test_builds_lazily(self):
        from .simulate import simulate

        spec = self.spec()
        with _NothingComputes():
            simulate(spec)

    def test_the_chunking_does_not_change_a_byte(self):
        whole, pieces = self._bytes(chunks=-1), self._bytes(chunks=7)
        changed = sorted(name for name in whole if whole[name] != pieces[name])
        assert not changed, f"{self.step.kind}: chunking changed {changed}"

    def test_threads_and_synchronous_give_the_same_bytes(self):
        threads, sync = self._bytes(scheduler="threads"), self._bytes(scheduler="sync")
        changed = sorted(name for name in threads if threads[name] != sync[name])
        assert not changed, f"{self.step.kind}: the scheduler changed {changed}"

    def test_kernels_leave_their_inputs_alone(self):
        from .simulate import simulate

        # Every array a kernel receives is a read-only view here, so a write into one
        # raises whatever the chunking (outside this check, only shared blocks are).
        with read_only_inputs(), dask.config.set(scheduler="sync"):
            try:
                simulate(self.spec(), chunks=7).dataset.compute()
            except Exception as error:  # numpy: ValueError; numba: a typing error
                if not any(word in str(error) for word in ("read-only", "readonly")):
                    raise
                raise AssertionError(
                    f"{self.step.kind}: a kernel wrote into one of its inputs ({error}); "
                    "kernels must return new arrays (values = values * gain, not "
                    "values *= gain)"
                ) from error

    def test_declared_outputs_are_in_the_recording_as_declared(self):
        from .simulate import simulate

        ds = simulate(self.spec()).dataset
        for quantity in type(self.step).provided_quantities(optional=False):
            if not quantity.stored or quantity.place == "movie":
                continue
            assert quantity.name in ds.variables, f"{self.step.kind}: no {quantity.name!r}"
            var = ds[quantity.name]
            assert var.dims == quantity.dims, (
                f"{self.step.kind}: {quantity.name!r} has dims {var.dims}, declared {quantity.dims}"
            )
            assert var.dtype == np.dtype(quantity.dtype), (
                f"{self.step.kind}: {quantity.name!r} is {var.dtype}, declared "
                f"{quantity.dtype}: cast it in the kernel or fix the Quantity"
            )

    def test_documented(self):
        cls = type(self.step)
        assert (cls.__doc__ or "").strip(), f"{cls.__name__} needs a docstring"
        if cls.__module__.startswith("minisim.") and self.steps_reference.exists():
            text = self.steps_reference.read_text()
            assert f"(kind `{self.step.kind}`)" in text, (
                f"{self.steps_reference.name} has no section for kind {self.step.kind!r}"
            )
