"""The step contract as a newcomer meets it: ties in order, derived stage flags, helpful
names in errors, and every declared description stored with its variable."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pytest

from minisim import CellActivity, Composite, PlaceNeurons, Spec, simulate
from minisim.schema import Quantity, dataset_schema, known_quantities, quantity
from minisim.steps import StepSpec
from minisim.steps.registry import canonical_order

from .conftest import small_acquisition


class _TieA(StepSpec):
    """A test step."""

    kind: Literal["tie_a"] = "tie_a"
    order: ClassVar[float] = 115


class _TieB(StepSpec):
    """Another test step at the same place on the light path."""

    kind: Literal["tie_b"] = "tie_b"
    order: ClassVar[float] = 115
    provides: ClassVar[tuple] = ("observed",)


def test_steps_of_equal_order_sort_by_kind_whatever_the_listing():
    first = canonical_order([_TieB(), _TieA(), PlaceNeurons()])
    second = canonical_order([_TieA(), PlaceNeurons(), _TieB()])
    assert (
        [s.kind for s in first] == [s.kind for s in second] == ["place_neurons", "tie_a", "tie_b"]
    )


def test_a_step_that_declares_the_movie_is_a_stage():
    assert _TieB.writes_movie and not _TieA.writes_movie
    assert Composite.writes_movie and not CellActivity.writes_movie


def test_an_unknown_kind_names_the_close_one_and_how_plugins_register():
    with pytest.raises(ValueError) as err:
        Spec.model_validate({"steps": [{"kind": "place_neuron"}]})
    text = str(err.value)
    assert "steps[0].kind='place_neuron'" in text and "did you mean 'place_neurons'" in text
    assert "minisim.steps" in text and "install" in text


def test_a_misspelt_quantity_suggests_the_known_one():
    with pytest.raises(KeyError, match="did you mean 'population_calcium'"):
        quantity("population_calcum")
    names = {q.name for q in known_quantities()}
    assert {"population_calcium", "C", "observed"} <= names  # internal ones included


def test_every_stored_variable_carries_its_declared_description():
    spec = Spec(acquisition=small_acquisition(px=24, duration_s=0.5), seed=1,
                steps=[PlaceNeurons(), CellActivity(), Composite()])  # fmt: skip
    ds = simulate(spec).dataset
    schema = dataset_schema()
    described = [name for name in ds.variables if name in schema and schema[name].description]
    assert "C" in described
    for name in described:
        assert ds[name].attrs["description"] == schema[name].description, name
        assert ds[name].attrs["long_name"] == schema[name].label, name


def test_a_new_quantity_joins_the_known_ones_when_its_step_is_defined():
    hint = Quantity("contract_test_gain", "coords", "a test gain", ("frame",), "float32")

    class _WithGain(StepSpec):
        """Declares a new quantity."""

        kind: Literal["contract_gain"] = "contract_gain"
        order: ClassVar[float] = 116
        provides: ClassVar[tuple] = (hint,)

    assert quantity("contract_test_gain") is hint
    assert not _WithGain.writes_movie


def _add_in_place(start, stop, frames, field):
    frames += field  # the bug the check exists for: the block it was given changes
    return frames


def test_the_conformance_checks_catch_a_kernel_writing_into_its_input(monkeypatch):
    from minisim import Leakage
    from minisim.conformance import StepConformance
    from minisim.steps import fields

    monkeypatch.setattr(fields, "add_frames", _add_in_place)
    check = type("TestInPlace", (StepConformance,), {"step": Leakage()})()
    check.test_the_chunking_does_not_change_a_byte()  # the bug hides from the byte checks
    with pytest.raises(AssertionError, match="leakage: a kernel wrote into one of its inputs"):
        check.test_kernels_leave_their_inputs_alone()


def test_without_the_check_graphs_hold_the_kernels_themselves():
    from minisim.engine import map_ranges
    from minisim.engine.read_only import ReadOnlyArguments, read_only_inputs

    def layer_funcs(arr):
        return {task[0] for task in arr.dask.layers[arr.name].values()}

    plain = map_ranges("plain-check", _add_in_place, (3,), (), "f8")
    assert layer_funcs(plain) == {_add_in_place}
    with read_only_inputs():
        checked = map_ranges("checked-check", _add_in_place, (3,), (), "f8")
    assert all(isinstance(f, ReadOnlyArguments) for f in layer_funcs(checked))


def test_the_check_names_the_step_when_a_compiled_kernel_writes_into_its_input(monkeypatch):
    numba = pytest.importorskip("numba")
    from minisim import Leakage
    from minisim.conformance import StepConformance
    from minisim.steps import fields

    @numba.njit
    def add_into(frames, field):
        for i in range(frames.shape[0]):
            for j in range(frames.shape[1]):
                for k in range(frames.shape[2]):
                    frames[i, j, k] = frames[i, j, k] + field[j, k]

    def add_compiled(start, stop, frames, field):
        add_into(frames, field)
        return frames

    monkeypatch.setattr(fields, "add_frames", add_compiled)
    check = type("TestCompiledInPlace", (StepConformance,), {"step": Leakage()})()
    with pytest.raises(AssertionError, match="leakage: a kernel wrote into one of its inputs"):
        check.test_kernels_leave_their_inputs_alone()


def test_arrays_inside_tuples_lists_and_dicts_arrive_read_only():
    from minisim.engine.read_only import ReadOnlyArguments

    seen = []
    block = np.zeros(3)
    ReadOnlyArguments(lambda *args: seen.extend(args))(block, (block,), [block], {"a": block})
    flat = [seen[0], seen[1][0], seen[2][0], seen[3]["a"]]
    assert not any(a.flags.writeable for a in flat) and block.flags.writeable
