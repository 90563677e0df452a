"""Physics tests of neuron placement and planted footprints (``place_neurons``).

Every check is against a closed form (cell counts, disk areas, outline bounds) or an
exact property of the model (bounds, spacing, verbatim positions, determinism). The
recordings are tiny, at 1 µm per pixel (8 µm pitch behind 8× magnification), so pixel
and µm lengths coincide.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from pydantic import ValidationError
from scipy.spatial.distance import pdist

from minisim import (
    Acquisition,
    ImageSensor,
    NeuronPopulation,
    Optics,
    PlaceNeurons,
    Spec,
    SpecWarning,
    simulate,
)
from minisim.steps.place_neurons import DENDRITE_INTENSITY, population_count

PX_UM = 1.0  # pixel size in the tissue for every acquisition built here


def acquisition(height: int = 60, width: int = 60) -> Acquisition:
    """A one-frame acquisition at 1 µm/px (no motion step, so canvas = field of view)."""
    return Acquisition(
        image_sensor=ImageSensor(n_px_height=height, n_px_width=width, pixel_pitch_um=8.0),
        optics=Optics(magnification=8.0),
        fps=20.0,
        duration_s=0.05,
    )


def truth(step: PlaceNeurons, *, height: int = 60, width: int = 60, seed: int = 7):
    spec = Spec(acquisition=acquisition(height, width), seed=seed, steps=[step])
    assert spec.acquisition.pixel_size_um == PX_UM
    return simulate(spec).ground_truth


def pixel_center(y_um: float, x_um: float, height: int, width: int) -> tuple[float, float]:
    """(row, col) of an optical-centre µm position: the grid centre is (h−1)/2, (w−1)/2."""
    return (height - 1) / 2 + y_um / PX_UM, (width - 1) / 2 + x_um / PX_UM


def distance_map(y_um: float, x_um: float, height: int, width: int) -> np.ndarray:
    rc, cc = pixel_center(y_um, x_um, height, width)
    rows, cols = np.mgrid[0:height, 0:width]
    return np.hypot(rows - rc, cols - cc)


# --------------------------------------------------------------------------- counts


@pytest.mark.parametrize(
    ("height", "width", "density", "depth", "radius", "expected"),
    [
        # 200000/mm³ · (0.05 mm)² · max(0, 2·5 µm) = 200000 · 0.0025 · 0.010 = 5
        (50, 50, 200_000.0, (0.0, 0.0), 5.0, 5),
        # default band (0, 200) and radius 7: 25000 · 0.06·0.06 · 0.2 = 18
        (60, 60, 25_000.0, (0.0, 200.0), 7.0, 18),
        # thin band floored at one soma diameter: 1e6 · 0.04·0.06 · max(0.004, 0.010) = 24
        # (radius 5: somata fill 52 % of the volume; radius 7 would overfill it, an error)
        (40, 60, 1_000_000.0, (10.0, 14.0), 5.0, 24),
    ],
)
def test_cell_count_is_density_times_volume(height, width, density, depth, radius, expected):
    step = PlaceNeurons(
        density_per_mm3=density, depth_range_um=depth, soma_radius_um=radius, irregularity=0.2
    )
    lo, hi = depth
    closed_form = round(
        density * (height * PX_UM / 1000) * (width * PX_UM / 1000) * max(hi - lo, 2 * radius) / 1000
    )
    assert closed_form == expected  # the hand-computed value in the parameter list
    pop = step.population_list()[0]
    assert population_count(pop, (height * PX_UM, width * PX_UM)) == expected
    gt = truth(step, height=height, width=width)
    assert gt.n_units == expected
    assert gt.centers_um.shape == (expected, 3)


def test_default_thickness_count():
    """Default population (25000/mm³, band 0–200 µm): 25000 · 0.06·0.05 · 0.2 = 15 cells."""
    step = PlaceNeurons()
    pop = NeuronPopulation()
    assert pop.depth_range_um == (0.0, 200.0)
    expected = round(pop.density_per_mm3 * 0.060 * 0.050 * 0.200)
    assert expected == 15
    assert population_count(pop, (60.0, 50.0)) == expected
    assert truth(step, height=60, width=50).n_units == expected


# --------------------------------------------------------------------------- centres


def test_centers_fill_the_canvas_and_depth_band():
    height, width, band = 80, 40, (20.0, 120.0)
    gt = truth(
        PlaceNeurons(density_per_mm3=2_000_000.0, depth_range_um=band, soma_radius_um=3.0),
        height=height,
        width=width,
    )
    z, y, x = gt.centers_um.values.T
    assert gt.n_units == round(2e6 * 0.08 * 0.04 * 0.1) == 640
    assert np.all((band[0] <= z) & (z <= band[1]))
    assert np.all(np.abs(y) <= height * PX_UM / 2)
    assert np.all(np.abs(x) <= width * PX_UM / 2)
    # Uniform over the slab: each axis spans nearly its whole range (catches swapped axes).
    for values, (lo, hi) in ((z, band), (y, (-40.0, 40.0)), (x, (-20.0, 20.0))):
        assert np.ptp(values) > 0.95 * (hi - lo)
        assert abs(values.mean() - (lo + hi) / 2) < 5 * (hi - lo) / math.sqrt(12 * len(values))
    # depth_um is the z column
    np.testing.assert_array_equal(gt.depth_um.values, z)


def test_min_distance_is_respected():
    kwargs = dict(density_per_mm3=400_000.0, depth_range_um=(0.0, 30.0), soma_radius_um=2.0)
    min_distance = 8.0
    free = truth(PlaceNeurons(**kwargs))
    spaced = truth(PlaceNeurons(**kwargs, min_distance_um=min_distance))
    assert free.n_units == spaced.n_units == round(4e5 * 0.06 * 0.06 * 0.03) == 43
    # Without the rule some pair is closer (so the check below can fail) ...
    assert pdist(free.centers_um.values).min() < min_distance
    # ... with it, every 3-D centre-to-centre distance is at least min_distance.
    assert pdist(spaced.centers_um.values).min() >= min_distance


def test_over_dense_min_distance_warns_and_places_fewer():
    step = PlaceNeurons(
        density_per_mm3=400_000.0,
        depth_range_um=(0.0, 30.0),
        soma_radius_um=2.0,
        min_distance_um=40.0,
    )
    requested = population_count(step.population_list()[0], (60.0, 60.0))
    with pytest.warns(SpecWarning, match="min_distance_um"):
        gt = truth(step)
    assert 0 < gt.n_units < requested
    assert pdist(gt.centers_um.values).min() >= 40.0


# --------------------------------------------------------------------------- explicit


POSITIONS = ((10.0, 5.5, -3.25), (0.0, -20.125, 12.0), (55.5, 0.0, 0.0), (3.0, 17.0, -22.75))


def test_explicit_positions_come_back_verbatim():
    gt = truth(PlaceNeurons(positions_um=POSITIONS, soma_radius_um=4.0))
    assert gt.n_units == len(POSITIONS)
    assert np.array_equal(gt.centers_um.values, np.array(POSITIONS))


@pytest.mark.parametrize("explicit_first", [True, False])
def test_mixed_populations_concatenate_in_order(explicit_first):
    explicit = NeuronPopulation(positions_um=POSITIONS, soma_radius_um=4.0)
    sampled = NeuronPopulation(
        density_per_mm3=300_000.0, depth_range_um=(30.0, 60.0), soma_radius_um=3.0
    )
    n_sampled = population_count(sampled, (60.0, 60.0))
    assert n_sampled == round(3e5 * 0.06 * 0.06 * 0.03) == 32
    pops = [explicit, sampled] if explicit_first else [sampled, explicit]
    gt = truth(PlaceNeurons(populations=pops))
    centers = gt.centers_um.values
    assert gt.n_units == len(POSITIONS) + n_sampled
    if explicit_first:
        given, drawn = centers[: len(POSITIONS)], centers[len(POSITIONS) :]
        labels = [0] * len(POSITIONS) + [1] * n_sampled
    else:
        drawn, given = centers[:n_sampled], centers[n_sampled:]
        labels = [0] * n_sampled + [1] * len(POSITIONS)
    assert np.array_equal(given, np.array(POSITIONS))
    assert np.all((drawn[:, 0] >= 30.0) & (drawn[:, 0] <= 60.0))
    np.testing.assert_array_equal(gt.population.values, labels)


# --------------------------------------------------------------------------- footprints


def test_footprints_are_peak_normalized():
    gt = truth(PlaceNeurons(density_per_mm3=200_000.0, soma_radius_um=4.0, irregularity=0.5))
    A = gt.A_planted.values
    assert gt.n_units > 20
    np.testing.assert_array_equal(A.max(axis=(1, 2)), np.ones(gt.n_units, np.float32))
    assert A.min() == 0.0


@pytest.mark.parametrize("center", [(0.0, 0.0), (3.3, -2.7), (-10.25, 7.6)])
def test_irregularity_zero_is_a_binary_disk(center):
    height = width = 60
    radius = 10.0
    gt = truth(PlaceNeurons(positions_um=[(0.0, *center)], soma_radius_um=radius, irregularity=0.0))
    A = gt.A_planted.values[0]
    dist = distance_map(*center, height, width)
    # Exactly the pixels whose centre lies within the radius, all at 1.
    np.testing.assert_array_equal(A, (dist <= radius).astype(np.float32))
    # Pixel count ≈ πr² (lattice points in a disk of radius 10: error well below 5%).
    assert abs(A.sum() - math.pi * radius**2) < 0.05 * math.pi * radius**2


@pytest.mark.parametrize("irregularity", [0.2, 0.6, 1.0])
def test_irregular_soma_stays_binary_within_its_bounds(irregularity):
    height = width = 60
    radius = 8.0
    positions = [(0.0, -12.0, -12.0), (0.0, 12.0, 12.0), (0.0, -12.0, 13.0)]
    gt = truth(
        PlaceNeurons(positions_um=positions, soma_radius_um=radius, irregularity=irregularity)
    )
    A = gt.A_planted.values
    assert set(np.unique(A)) == {0.0, 1.0}
    differs_from_disk = 0
    for (_, y, x), fp in zip(positions, A, strict=True):
        dist = distance_map(y, x, height, width)
        lit = fp > 0
        # The outline wobbles by at most irregularity·r either way.
        assert dist[lit].max() <= radius * (1 + irregularity) + 1e-9
        assert np.all(lit[dist <= radius * (1 - irregularity) - 1e-9])
        differs_from_disk += int(np.any(lit != (dist <= radius)))
    assert differs_from_disk == len(positions)


def cytosolic_pair(irregularity: float, seed: int = 11):
    positions = [(0.0, -14.0, -14.0), (0.0, 14.0, 14.0), (0.0, 15.0, -15.0), (0.0, -13.0, 13.0)]
    common = dict(positions_um=positions, soma_radius_um=5.0, irregularity=irregularity)
    soma = truth(PlaceNeurons(**common, morphology="soma"), seed=seed)
    cyto = truth(PlaceNeurons(**common, morphology="cytosolic"), seed=seed)
    return positions, soma.A_planted.values, cyto.A_planted.values


@pytest.mark.parametrize("irregularity", [0.0, 0.3])
def test_cytosolic_adds_dimmer_dendrites(irregularity):
    radius = 5.0
    positions, soma, cyto = cytosolic_pair(irregularity)
    tip, base = DENDRITE_INTENSITY
    assert (tip, base) == (0.05, 0.55)
    for (_, y, x), s, c in zip(positions, soma, cyto, strict=True):
        assert np.count_nonzero(c) > np.count_nonzero(s)
        dist = distance_map(y, x, 60, 60)
        assert dist[c > 0].max() > radius + 2
        dendrite = c[(c > 0) & (c < 1)]
        assert dendrite.size > 0
        assert dendrite.min() >= tip - 1e-6
        assert dendrite.max() <= base + 1e-6
        # The soma (value 1) stays within its outline bound; dendrites never reach 1.
        assert dist[c == 1].max() <= radius * (1 + irregularity) + 1e-9
        assert c.max() == 1.0


def test_cytosolic_soma_equals_soma_morphology_without_irregularity():
    _, soma, cyto = cytosolic_pair(0.0)
    np.testing.assert_array_equal(cyto == 1, soma == 1)


def test_cytosolic_soma_equals_soma_morphology_with_irregularity():
    _, soma, cyto = cytosolic_pair(0.3)
    np.testing.assert_array_equal(cyto == 1, soma == 1)


# --------------------------------------------------------------------------- determinism


def test_same_spec_is_deterministic_and_seed_matters():
    step = PlaceNeurons(density_per_mm3=150_000.0, soma_radius_um=4.0, morphology="cytosolic")
    a, b = truth(step, seed=5), truth(step, seed=5)
    assert a.n_units > 10
    assert np.array_equal(a.centers_um.values, b.centers_um.values)
    assert np.array_equal(a.A_planted.values, b.A_planted.values)
    c = truth(step, seed=6)
    assert c.n_units == a.n_units  # the count is not random ...
    assert not np.array_equal(a.centers_um.values, c.centers_um.values)  # ... the centres are


# --------------------------------------------------------------------------- validation


def test_empty_populations_raise():
    with pytest.raises(ValidationError, match="populations"):
        PlaceNeurons(populations=[])


def test_step_field_with_populations_raises_naming_the_field():
    with pytest.raises(ValidationError, match="soma_radius_um"):
        PlaceNeurons(soma_radius_um=5.0, populations=[NeuronPopulation()])
    # Fields left at their defaults are fine (the comparison is against defaults).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PlaceNeurons(soma_radius_um=7.0, populations=[NeuronPopulation(soma_radius_um=5.0)])


@pytest.mark.parametrize("model", [NeuronPopulation, PlaceNeurons])
def test_inverted_depth_range_raises(model):
    with pytest.raises(ValidationError, match="depth_range_um"):
        model(depth_range_um=(50.0, 10.0))
    model(depth_range_um=(10.0, 10.0))  # an empty band is legal
