"""Vessels: tree growth by Murray's law, rasterized path length, Beer–Lambert shading."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from minisim import (
    CellActivity,
    CellOptics,
    Composite,
    PlaceNeurons,
    Sensor,
    Spec,
    Vasculature,
    VesselLayer,
    simulate,
)
from minisim.steps.vasculature import grow_layer, murray_children, rasterize_vessels, transmission

from .conftest import small_acquisition


def test_murray_cube_sum():
    main, side = murray_children(10.0, 0.7)
    assert main**3 + side**3 == pytest.approx(1000.0)
    assert main > side


def test_tree_branches_conserve_cube_sum_and_respect_the_floor():
    layer = VesselLayer(branch_prob=0.3, root_radius_um=20.0, min_radius_um=3.0)
    segments = grow_layer(layer, (300, 300), 1.0, seed=4, index=0)
    assert len(segments) > 10
    radii = segments[:, 4]
    assert radii.max() == 20.0 and radii.min() >= 3.0
    # Every radius is the root's times a product of Murray factors.
    a, b = 0.7 ** (1 / 3), 0.3 ** (1 / 3)
    allowed = {round(20.0 * a**i * b**j, 9) for i in range(30) for j in range(10)}
    assert {round(r, 9) for r in radii} <= allowed
    again = grow_layer(layer, (300, 300), 1.0, seed=4, index=0)
    assert np.array_equal(segments, again)
    assert not np.array_equal(segments, grow_layer(layer, (300, 300), 1.0, seed=5, index=0))


def test_unbranched_vessel_is_a_chain_of_constant_radius():
    layer = VesselLayer(branch_prob=0.0, n_roots=1, tortuosity_deg=0.0)
    seg = grow_layer(layer, (200, 200), 1.0, seed=1, index=0)
    assert np.all(seg[:, 4] == 22.0)
    np.testing.assert_allclose(seg[1:, :2], seg[:-1, 2:4])  # each starts where the last ended


def test_chord_is_2r_on_the_axis_and_overlaps_add():
    seg = np.array([[50.0, 10.0, 50.0, 90.0, 6.0]])  # horizontal vessel at y = 50 µm
    length = rasterize_vessels(seg, (100, 100), 1.0)
    # Pixel row 49 has its centre at 49.5 µm: chord 2·sqrt(r² − 0.5²).
    assert length[49, 50] == pytest.approx(2 * np.sqrt(36 - 0.25))
    assert length[30, 50] == 0 and length[49, 2] == 0 and length[49, 5] > 0  # rounded caps
    double = rasterize_vessels(np.vstack([seg, seg]), (100, 100), 1.0)
    np.testing.assert_allclose(double, 2 * length)
    assert rasterize_vessels(np.zeros((0, 5)), (10, 10), 1.0).sum() == 0


def test_transmission_floor_and_absorption():
    assert transmission(np.array(0.0), 0.85, 0.04) == 1.0
    assert transmission(np.array(1e6), 0.85, 0.04) == pytest.approx(0.15)
    assert transmission(np.array(20.0), 0.85, 0.08) < transmission(np.array(20.0), 0.85, 0.04)


def test_layer_validation():
    with pytest.raises(ValidationError, match="min_radius_um"):
        VesselLayer(min_radius_um=30.0, root_radius_um=20.0)
    with pytest.raises(ValidationError, match="branch_area_main"):
        VesselLayer(branch_area_main=0.4)


def spec(vessels, extra=()):
    return Spec(acquisition=small_acquisition(px=80, duration_s=1.0), seed=3,
                steps=[PlaceNeurons(), CellActivity(), CellOptics(), Composite(), vessels, *extra])  # fmt: skip


@pytest.mark.filterwarnings("ignore:vasculature has 1 layer:minisim.SpecWarning")
def test_disabled_step_is_a_no_op():
    plain = simulate(spec(Vasculature()))
    off = simulate(spec(Vasculature(enabled=False, layers=[VesselLayer()])))
    assert np.array_equal(plain.observed.values, off.observed.values)
    assert "vasculature_mask" not in off.dataset.coords


def test_vessels_shade_the_tissue_by_their_mask():
    rec = simulate(spec(Vasculature(enabled=True, layers=[VesselLayer(depth_um=20.0)]))).compute()
    cells = simulate(rec.spec, until="cells_only").observed.values
    mask = rec.ground_truth.vasculature_mask.values
    assert mask.min() < 0.9 and mask.max() <= 1.0 + 1e-12 and mask.min() >= 0.15 - 1e-9
    np.testing.assert_allclose(rec.observed.values, cells * mask.astype(np.float32), rtol=1e-6)
    overlap = rec.ground_truth.vessel_overlap_fraction.values
    assert overlap.min() >= 0 and overlap.max() <= 1 and overlap.max() > 0.05


def test_lazy_focus_path_gives_the_same_kind_of_mask():
    rec = simulate(spec(Vasculature(enabled=True, layers=[VesselLayer()]), extra=[Sensor()]))
    mask = rec.ground_truth.vasculature_mask.values
    assert mask.shape == (80, 80) and mask.min() < 1.0
    assert rec.ground_truth.vessel_overlap_fraction.shape == (rec.ground_truth.n_units,)


def test_layers_without_enabled_warn():
    from minisim import SpecWarning

    with pytest.warns(SpecWarning, match="enabled=False"):
        Spec(acquisition=small_acquisition(px=40), steps=[Vasculature(layers=[VesselLayer()])])


def test_dark_movie_keeps_the_store_dtype():
    from minisim import Output

    spec = Spec(acquisition=small_acquisition(px=24, duration_s=0.5), steps=[PlaceNeurons()],
                output=Output(store_dtype="float32"))  # fmt: skip
    assert simulate(spec).observed.dtype == np.float32
