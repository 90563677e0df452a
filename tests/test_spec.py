"""The physical interface and the spec: defaults, derived values, validation, order."""

from __future__ import annotations

import math
import warnings

import pytest
from pydantic import ValidationError

from minisim import (
    Acquisition,
    Bleaching,
    CellActivity,
    Composite,
    ImageSensor,
    Optics,
    Output,
    PlaceNeurons,
    Spec,
    SpecWarning,
    Tissue,
)
from minisim.steps import registered_steps, stage_aliases

from .conftest import small_acquisition

STEPS = [PlaceNeurons(), CellActivity(), Composite()]


def test_derived_quantities_closed_forms():
    acq = Acquisition()
    assert acq.pixel_size_um == pytest.approx(3.0 / 8.0)
    assert acq.n_frames == 3000
    assert acq.fov_um == pytest.approx((96.0, 96.0))
    assert Acquisition(fps=20.0, duration_s=25.0).n_frames == 500
    assert Acquisition(fps=1.0, duration_s=2.5).n_frames == 2  # half to even
    assert acq.um_to_px(7.5) == pytest.approx(20.0)
    assert acq.s_to_frame(2.0) == pytest.approx(40.0)
    rows, cols = acq.um_to_index(0.0, 0.0, (256, 256))
    assert (rows, cols) == (127.5, 127.5)


def test_optics_closed_forms():
    o = Optics()
    lam = 0.525
    assert o.resolved_depth_of_field_um == pytest.approx(1.33 * lam / 0.45**2)
    assert o.resolved_depth_of_field_um == pytest.approx(3.448, abs=1e-3)
    assert Optics(na=0.3).resolved_depth_of_field_um == pytest.approx(7.758, abs=1e-3)
    assert Optics(depth_of_field_um=15.0).resolved_depth_of_field_um == 15.0
    assert o.diffraction_sigma_um == pytest.approx(0.21 * lam / 0.45)
    assert o.collection_efficiency == pytest.approx(0.2025)
    assert o.defocus_sigma_um(80.0, 50.0) == pytest.approx(0.45 * 30.0)
    assert o.defocus_sigma_um(20.0, 50.0) == o.defocus_sigma_um(80.0, 50.0)
    curved = Optics(field_curvature_radius_um=2500.0)
    assert curved.curvature_shift_um(500.0) == pytest.approx(2500 - math.sqrt(2500**2 - 500**2))
    assert curved.curvature_shift_um(700.0) == pytest.approx(100.0, abs=0.5)
    assert o.curvature_shift_um(500.0) == 0.0


def test_tissue_closed_forms():
    t = Tissue()
    assert t.effective_mfp_um == pytest.approx(1 / (1 / 600 + 1 / 100))
    assert t.attenuation(0.0) == 1.0
    assert t.attenuation(100.0) == pytest.approx(math.exp(-100 / t.effective_mfp_um))
    assert t.scatter_sigma_um(100.0) == pytest.approx(5.0)


def test_cell_optics_invariant_and_surface():
    acq = Acquisition()
    sigma_a, bright_a = acq.cell_optics(60.0, 40.0)
    sigma_b, bright_b = acq.cell_optics(60.0, 75.0)
    assert sigma_a**2 * bright_a == pytest.approx(sigma_b**2 * bright_b, rel=1e-12)
    sigma0, bright0 = acq.cell_optics(0.0, 0.0)
    assert bright0 == pytest.approx(0.45**2)
    assert sigma0 == pytest.approx(acq.optics.diffraction_sigma_um / acq.pixel_size_um)


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: Acquisition(fps=-1.0), "fps"),
        (lambda: Acquisition(duration_s=0.0), "duration_s"),
        (lambda: Optics(na=0.0), "na"),
        (lambda: ImageSensor(quantum_efficiency=1.5), "quantum_efficiency"),
        (lambda: ImageSensor(bit_depth=17), "bit_depth"),
        (lambda: Acquisition(focal_depth_in_tissue_um=-5.0), "focal_depth_in_tissue_um"),
        (lambda: Acquisition(optics=Optics(depth_of_field_um="wide")), "depth_of_field_um"),
    ],
)
def test_bad_values_name_the_field(make, field):
    with pytest.raises(ValidationError) as info:
        make()
    assert field in str(info.value)


def test_unknown_field_rejected_and_models_frozen():
    with pytest.raises(ValidationError, match="frame_rate"):
        Acquisition(frame_rate=30.0)
    with pytest.raises(ValidationError, match="densty_per_mm3"):
        PlaceNeurons(densty_per_mm3=1.0)
    acq = Acquisition()
    with pytest.raises(ValidationError):
        acq.fps = 30.0


def test_zero_frames_rejected():
    with pytest.raises(ValidationError, match="at least one frame"):
        Acquisition(fps=1.0, duration_s=0.4)


def test_json_round_trip_and_cache_key():
    spec = Spec(
        acquisition=small_acquisition(), seed=3, steps=STEPS, output=Output(save_intermediates=True)
    )
    again = Spec.model_validate_json(spec.model_dump_json())
    assert again == spec
    assert [type(s) for s in again.steps] == [PlaceNeurons, CellActivity, Composite]
    assert again.cache_key() == spec.cache_key()
    assert len(spec.cache_key()) == 16
    assert (
        Spec(acquisition=small_acquisition(), seed=4, steps=STEPS).cache_key() != spec.cache_key()
    )
    assert Spec(steps=STEPS).seed == 42


def test_listing_order_is_canonicalized():
    a = Spec(steps=[Composite(), CellActivity(), PlaceNeurons()])
    b = Spec(steps=[PlaceNeurons(), CellActivity(), Composite()])
    assert [s.kind for s in a.steps] == ["place_neurons", "cell_activity", "composite"]
    assert a == b and a.cache_key() == b.cache_key()


def test_the_registry_orders_steps_so_every_need_is_provided_earlier():
    steps = [c for c in registered_steps() if c.__module__.startswith("minisim.")]
    kinds = [c.kind_name() for c in steps]
    assert len(kinds) == 13 and len(set(kinds)) == 13  # dropped_frames is the 13th
    orders = [c.order for c in steps]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)
    for rank, cls in enumerate(steps):
        for need in cls.needed_quantities():
            earlier = [c for c in steps[:rank] if need in c.provided_quantities(optional=False)]
            assert earlier, (cls.kind_name(), need.name)
    assert stage_aliases()["composite"] == "cells_only"


def test_a_missing_provider_is_named_before_anything_is_built():
    with pytest.raises(
        ValidationError, match=r"cell_activity needs cell positions .*add PlaceNeurons\(\)"
    ):
        Spec(steps=[CellActivity(), Composite()])
    with pytest.raises(
        ValidationError, match=r"bleaching needs calcium traces \(C\).*CellActivity\(\)"
    ):
        Spec(steps=[PlaceNeurons(), Bleaching()])


def test_steps_are_a_discriminated_union():
    spec = Spec.model_validate({"steps": [{"kind": "place_neurons", "soma_radius_um": 5.0}]})
    assert isinstance(spec.steps[0], PlaceNeurons) and spec.steps[0].soma_radius_um == 5.0
    with pytest.raises(ValidationError, match="kind"):
        Spec.model_validate({"steps": [{"kind": "teleport"}]})


def test_duplicate_step_rejected():
    with pytest.raises(ValidationError, match="more than once"):
        Spec(steps=[PlaceNeurons(), PlaceNeurons(soma_radius_um=4.0)])


def test_soma_wider_than_fov_rejected():
    acq = small_acquisition(px=20)
    with pytest.raises(ValidationError, match="field of view"):
        Spec(acquisition=acq, steps=[PlaceNeurons(soma_radius_um=12.0)])
    from minisim import NeuronPopulation

    with pytest.raises(ValidationError, match="field of view"):
        Spec(
            acquisition=acq,
            steps=[
                PlaceNeurons(
                    populations=[NeuronPopulation(), NeuronPopulation(soma_radius_um=11.0)]
                )
            ],
        )


def test_unresolvable_kinetics_rejected():
    with pytest.raises(ValidationError, match="unresolvable"):
        Spec(
            acquisition=small_acquisition(fps=2.0),
            steps=[PlaceNeurons(), CellActivity(tau_decay_s=0.4)],
        )


def test_focal_range_warning():
    acq = small_acquisition(focal_depth_in_tissue_um=300.0)
    with pytest.warns(SpecWarning, match="focal"):
        Spec(acquisition=acq, steps=[PlaceNeurons(depth_range_um=(0.0, 200.0))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Spec(acquisition=small_acquisition(focal_depth_in_tissue_um=100.0), steps=[PlaceNeurons()])
        Spec(acquisition=small_acquisition(), steps=[PlaceNeurons()])  # "auto" never warns


def test_focal_range_uses_the_populations():
    from minisim import NeuronPopulation

    acq = small_acquisition(focal_depth_in_tissue_um=250.0)
    step = PlaceNeurons(populations=[NeuronPopulation(depth_range_um=(200.0, 300.0))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Spec(acquisition=acq, steps=[step])  # 250 lies in the population's band


def test_stage_resolution():
    spec = Spec(steps=STEPS)
    assert spec.resolve_stage("composite") == "cells_only"
    assert spec.resolve_stage("cells_only") == "cells_only"
    with pytest.raises(ValueError, match="cells_only"):
        spec.resolve_stage("sensor")


def test_spec_warnings_point_at_the_users_line():
    acq = small_acquisition(px=32, duration_s=1.0)
    with pytest.warns(SpecWarning) as built:
        spec = Spec(acquisition=acq, steps=[PlaceNeurons(), CellActivity()])
    with pytest.warns(SpecWarning) as loaded:
        Spec.model_validate_json(spec.model_dump_json())
    assert {w.filename for w in built} == {__file__}
    assert {w.filename for w in loaded} == {__file__}


def test_the_cli_writes_a_starter_spec_that_runs(tmp_path, capsys):
    from minisim.cli import main

    for preset in ("v4-ca1", "v4-cortex", "generic"):
        path = tmp_path / f"{preset}.json"
        assert main(["spec", "--preset", preset, "--duration", "1", "-o", str(path)]) == 0
        spec = Spec.model_validate_json(path.read_text())
        assert spec.acquisition.duration_s == 1.0 and spec.step("sensor") is not None
    assert "minisim run" in capsys.readouterr().out
    mine = tmp_path / "notes.json"
    mine.write_text('{"mine": 1}')
    assert main(["spec", "-o", str(mine)]) == 1
    assert mine.read_text() == '{"mine": 1}'
