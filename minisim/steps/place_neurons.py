"""Where the cells are: 3-D centres and their sharp, peak-normalized footprints.

Placement and morphology do not grow with the recording's length, so they run eagerly
while the graph is built; each cell's shape comes from its own keyed random stream.
"""

from __future__ import annotations

import math
import warnings
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from ..acquisition import MAX_DEPTH_UM, FrozenModel, NonNegativeFloat, PositiveFloat, warn_odd
from ..engine import Footprints, Scene, stream
from ..engine import portable_math as pm
from ..errors import SpecWarning, user_stacklevel
from .base import StepSpec, warn_spec

KIND = "place_neurons"
#: Lateral positions beyond 10 mm from the optical axis are outside any brain.
MAX_LATERAL_UM = 10_000.0
#: No neuron's soma is wider than ~100 µm (Betz cells), nor its dendrites longer than ~2 mm.
MAX_SOMA_RADIUS_UM = 100.0
MAX_DENDRITE_LENGTH_UM = 2000.0
MAX_DENDRITE_WIDTH_UM = 50.0

# Dendrite growth constants (a fixed part of the morphology model, not spec fields).
DENDRITE_COUNT_MEAN = 5
DENDRITE_COUNT_RANGE = (2, 9)
DENDRITE_ANGLE_JITTER_RAD = 0.4
DENDRITE_LENGTH_RANGE = (0.6, 1.25)
DENDRITE_START_FRACTION = 0.8  # of the soma radius
DENDRITE_TURN_SIGMA_RAD = 0.16
DENDRITE_BRANCH_PROB = 0.06
DENDRITE_MAX_BRANCHES = 2
DENDRITE_MAIN_AREA = 0.62  # Murray split of the cross-section between main and side branch
DENDRITE_SIDE_ANGLE_RAD = 0.7
DENDRITE_MAIN_DEFLECT_RAD = 0.35
DENDRITE_SIDE_LENGTH_FRACTION = 0.8
# Branch widths by Murray's law (r_main³ + r_side³ = r³), computed once, CPU-independently.
MAIN_WIDTH_FACTOR = float(pm.power(DENDRITE_MAIN_AREA, 1 / 3))
SIDE_WIDTH_FACTOR = float(pm.power(1 - DENDRITE_MAIN_AREA, 1 / 3))
DENDRITE_MIN_STAMP_RADIUS_PX = 0.5
DENDRITE_INTENSITY = (0.05, 0.55)  # tip, base (the soma is 1)


class NeuronPopulation(FrozenModel):
    """One population of neurons: density, depth band and morphology.

    Parameters
    ----------
    density_per_mm3 : float
        Cells per mm³ of simulated tissue (the field of view plus any motion margin).
    soma_radius_um : float
        Soma radius in µm.
    irregularity : float
        Fractional wobble of the soma outline, 0 (a clean disk) to 1.
    morphology : "soma" or "cytosolic"
        ``"cytosolic"`` adds dimmer dendrites around the soma.
    dendrite_length_um, dendrite_width_um : float
        Nominal dendrite reach and base diameter (cytosolic only).
    depth_range_um : (float, float)
        Depth band (µm below the surface) the centres are drawn from.
    min_distance_um : float
        Minimum 3-D centre-to-centre distance within the population (0: off).
    positions_um : list of (z, y, x) or None
        Explicit centres in µm (optical-centre frame); density, depth band and spacing
        are then ignored.
    """

    density_per_mm3: PositiveFloat = 25000.0
    soma_radius_um: PositiveFloat = 7.0
    irregularity: Annotated[float, Field(ge=0, le=1)] = 0.3
    morphology: Literal["soma", "cytosolic"] = "soma"
    dendrite_length_um: PositiveFloat = 24.0
    dendrite_width_um: PositiveFloat = 3.0
    depth_range_um: tuple[NonNegativeFloat, NonNegativeFloat] = (0.0, 200.0)
    min_distance_um: NonNegativeFloat = 0.0
    positions_um: tuple[tuple[float, float, float], ...] | None = None

    @model_validator(mode="after")
    def _check_ranges(self):
        lo, hi = self.depth_range_um
        if hi < lo:
            raise ValueError(
                f"depth_range_um={self.depth_range_um}: the upper bound must be ≥ the lower bound"
            )
        if hi > MAX_DEPTH_UM:
            raise ValueError(
                f"depth_range_um={self.depth_range_um}: {hi:g} µm is deeper than any brain "
                f"(limit {MAX_DEPTH_UM:g} µm): give the depth band in µm below the surface"
            )
        if self.soma_radius_um > MAX_SOMA_RADIUS_UM:
            raise ValueError(
                f"soma_radius_um={self.soma_radius_um:g} exceeds {MAX_SOMA_RADIUS_UM:g} µm, wider "
                "than any neuron: give the soma radius in µm (typically 4–10)"
            )
        if self.dendrite_length_um > MAX_DENDRITE_LENGTH_UM:
            raise ValueError(
                f"dendrite_length_um={self.dendrite_length_um:g} exceeds "
                f"{MAX_DENDRITE_LENGTH_UM:g} µm, longer than any dendrite: give the reach in µm "
                "(typically 20–300)"
            )
        if self.dendrite_width_um > MAX_DENDRITE_WIDTH_UM:
            raise ValueError(
                f"dendrite_width_um={self.dendrite_width_um:g} exceeds {MAX_DENDRITE_WIDTH_UM:g} "
                "µm, wider than any dendrite: give the base diameter in µm (typically 1–5)"
            )
        if self.positions_um is not None:
            for i, (z, y, x) in enumerate(self.positions_um):
                if z < 0:
                    raise ValueError(
                        f"positions_um[{i}] has depth z={z}: depths are µm below the surface, ≥ 0"
                    )
                if z > MAX_DEPTH_UM:
                    raise ValueError(
                        f"positions_um[{i}] has depth z={z:g} µm, deeper than any brain (limit "
                        f"{MAX_DEPTH_UM:g} µm): give (z, y, x) in µm"
                    )
                if max(abs(y), abs(x)) > MAX_LATERAL_UM:
                    raise ValueError(
                        f"positions_um[{i}] = ({z:g}, {y:g}, {x:g}) lies more than "
                        f"{MAX_LATERAL_UM:g} µm from the optical axis, outside any brain: give "
                        "(z, y, x) in µm from the optical centre"
                    )
        if self.soma_radius_um < 1.0:
            warn_odd(
                f"soma_radius_um={self.soma_radius_um:g} µm is smaller than any soma (4–10 µm): "
                "check the units (µm, a radius)"
            )
        return self

    def depth_band(self) -> tuple[float, float] | None:
        """The depths this population occupies (None for an empty explicit list)."""
        if self.positions_um is None:
            return self.depth_range_um
        if not self.positions_um:
            return None
        z = [p[0] for p in self.positions_um]
        return (min(z), max(z))


_POPULATION_FIELDS = tuple(NeuronPopulation.model_fields)


class PlaceNeurons(NeuronPopulation, StepSpec):
    """Place neurons in the tissue volume (a single population, or several).

    Either configure one population with the fields inherited from
    :class:`NeuronPopulation`, or pass ``populations=[...]`` and leave those fields at
    their defaults. Positions use the optical-centre frame: (z, y, x) µm with the origin
    on the optical axis, +y down and +x right.
    """

    kind: Literal["place_neurons"] = KIND
    order: ClassVar[float] = 10
    provides: ClassVar[tuple[str, ...]] = (
        "centers_um",
        "population",
        "soma_radius_um",
        "footprints.planted",
    )
    populations: tuple[NeuronPopulation, ...] | None = None

    @model_validator(mode="after")
    def _check_populations(self):
        if self.populations is None:
            return self
        if len(self.populations) == 0:
            raise ValueError(
                "populations=[] is empty: give at least one NeuronPopulation, or leave it None "
                "to use this step's own fields"
            )
        defaults = NeuronPopulation()
        for name in _POPULATION_FIELDS:
            if getattr(self, name) != getattr(defaults, name):
                raise ValueError(
                    f"{name}={getattr(self, name)!r} is set on the step while populations are "
                    f"given: set it inside each NeuronPopulation instead"
                )
        return self

    def population_list(self) -> tuple[NeuronPopulation, ...]:
        if self.populations is not None:
            return self.populations
        return (NeuronPopulation(**{k: getattr(self, k) for k in _POPULATION_FIELDS}),)

    def check_in_spec(self, spec) -> None:
        acq = spec.acquisition
        fov = min(acq.fov_um)
        widest = max(p.soma_radius_um for p in self.population_list())
        if 2 * widest > fov:
            raise ValueError(
                f"place_neurons: soma diameter 2·soma_radius_um = {2 * widest:g} µm is wider than "
                f"the field of view ({fov:g} µm across): shrink soma_radius_um or widen the field"
            )
        from ..limits import DENSE_SOMA_VOLUME_FRACTION, margin_px

        margin = margin_px(spec) * acq.pixel_size_um
        half_h, half_w = acq.fov_um[0] / 2 + margin, acq.fov_um[1] / 2 + margin
        for pop in self.population_list():
            fraction = dense_packing_fraction(pop)
            if fraction is not None and fraction > DENSE_SOMA_VOLUME_FRACTION:
                warn_spec(
                    f"place_neurons: density_per_mm3={pop.density_per_mm3:g} with soma_radius_um="
                    f"{pop.soma_radius_um:g} fills {fraction:.0%} of the tissue with somata, "
                    f"denser than random close packing ({DENSE_SOMA_VOLUME_FRACTION:.0%}), so "
                    "cells overlap: lower density_per_mm3"
                )
            if pop.positions_um and all(
                abs(y) > half_h or abs(x) > half_w for _, y, x in pop.positions_um
            ):
                warn_spec(
                    f"place_neurons: all {len(pop.positions_um)} positions_um lie outside the "
                    f"simulated tissue (±{half_h:g} µm × ±{half_w:g} µm around the optical "
                    "axis), so no cell is seen: positions are (z, y, x) µm from the optical centre"
                )
        focal = acq.focal_depth_in_tissue_um
        bands = [b for b in (p.depth_band() for p in self.population_list()) if b is not None]
        if focal != "auto" and bands:
            lo, hi = min(b[0] for b in bands), max(b[1] for b in bands)
            if not lo <= focal <= hi:
                warn_spec(
                    f"focal_depth_in_tissue_um={focal:g} lies outside the cells' depth range "
                    f"[{lo:g}, {hi:g}] µm, so all cells sit on one side of focus: use 'auto' or a "
                    "depth inside the range"
                )

    def build(self, scene: Scene) -> Scene:
        acq = scene.context.acquisition
        px = acq.pixel_size_um
        canvas = scene.canvas_shape
        canvas_um = (canvas[0] * px, canvas[1] * px)
        centers, population = [], []
        for j, pop in enumerate(self.population_list()):
            c = population_centers(pop, canvas_um, scene.seed, j)
            centers.append(c)
            population.append(np.full(len(c), j))
        centers = np.concatenate(centers) if centers else np.zeros((0, 3))
        population = np.concatenate(population).astype(np.int64)
        pops = self.population_list()
        patches = []
        for i, (_z, y, x) in enumerate(centers):
            pop = pops[population[i]]
            row, col = acq.um_to_index(y, x, canvas)
            patches.append(
                neuron_footprint(
                    (float(row), float(col)),
                    radius_px=pop.soma_radius_um / px,
                    irregularity=pop.irregularity,
                    morphology=pop.morphology,
                    dendrite_length_px=pop.dendrite_length_um / px,
                    dendrite_width_px=pop.dendrite_width_um / px,
                    canvas_shape=canvas,
                    rng=stream(scene.seed, KIND, "morphology", i),
                )
            )
        footprints = Footprints.from_patches(patches, canvas)
        scene = scene.evolve(
            cells={
                "centers_um": centers,
                "population": population,
                "soma_radius_um": np.array([pops[k].soma_radius_um for k in population], float),
            },
            footprints={"planted": footprints},
        )
        # A cell entirely outside the simulated tissue can never be seen.
        return scene.with_cells(footprints.shapes[:, 0] > 0)


def dense_packing_fraction(pop: NeuronPopulation) -> float | None:
    """Share of the tissue's volume the somata fill (None for explicit positions)."""
    if pop.positions_um is not None:
        return None
    return pop.density_per_mm3 * 4.0 / 3.0 * math.pi * pop.soma_radius_um**3 / 1e9


def population_count(pop: NeuronPopulation, canvas_um: tuple[float, float]) -> int:
    """Expected cells: density × tissue area × band thickness (floored at one soma)."""
    lo, hi = pop.depth_range_um
    thickness_mm = max(hi - lo, 2 * pop.soma_radius_um) / 1000.0
    area_mm2 = (canvas_um[0] / 1000.0) * (canvas_um[1] / 1000.0)
    return round(pop.density_per_mm3 * area_mm2 * thickness_mm)


def population_centers(
    pop: NeuronPopulation, canvas_um: tuple[float, float], seed: int, index: int
) -> np.ndarray:
    """(n, 3) centres (z, y, x) µm of one population, uniform over its tissue slab."""
    if pop.positions_um is not None:
        return np.asarray(pop.positions_um, float).reshape(-1, 3)
    count = population_count(pop, canvas_um)
    rng = stream(seed, KIND, "centers", index)
    lo, hi = pop.depth_range_um
    low = np.array([lo, -canvas_um[0] / 2, -canvas_um[1] / 2])
    span = np.array([hi - lo, canvas_um[0], canvas_um[1]])
    if pop.min_distance_um <= 0:
        return low + span * rng.random((count, 3))
    return _spaced_centers(rng, count, low, span, pop.min_distance_um)


def _spaced_centers(rng, count, low, span, min_distance) -> np.ndarray:
    """Rejection sampling: accept a candidate only if far enough from all accepted ones."""
    max_attempts = max(1000, 100 * count)
    accepted = np.empty((count, 3))
    n = attempts = 0
    while n < count and attempts < max_attempts:
        batch = low + span * rng.random((min(count, max_attempts - attempts), 3))
        for candidate in batch:
            attempts += 1
            if (
                n == 0
                or np.min(np.sum((accepted[:n] - candidate) ** 2, axis=1))
                >= min_distance * min_distance
            ):
                accepted[n] = candidate
                n += 1
                if n == count:
                    break
    if n < count:
        warnings.warn(
            f"min_distance_um={min_distance:g} is too large for the density: placed {n} of "
            f"{count} cells after {attempts} attempts; lower min_distance_um or density_per_mm3",
            SpecWarning,
            stacklevel=user_stacklevel(),
        )
    return accepted[:n]


def neuron_footprint(
    center_rc: tuple[float, float],
    radius_px: float,
    irregularity: float,
    morphology: str,
    dendrite_length_px: float,
    dendrite_width_px: float,
    canvas_shape: tuple[int, int],
    rng: np.random.Generator,
) -> tuple[tuple[int, int], np.ndarray]:
    """One cell's planted footprint: soma = 1, dendrites dimmer, zero elsewhere.

    Returns ``((row, col), patch)`` clipped to the canvas. The shape is computed on the
    unclipped box, so a cell looks the same whether or not the canvas edge cuts it.
    """
    rc, cc = center_rc
    soma_half = radius_px * (1 + irregularity) + 1
    half = soma_half
    if morphology == "cytosolic":
        reach = (
            DENDRITE_START_FRACTION * radius_px
            + DENDRITE_LENGTH_RANGE[1] * dendrite_length_px
            + dendrite_width_px
            + 2
        )
        half = max(half, reach)
    r0, r1 = math.floor(rc - half), math.ceil(rc + half) + 1
    c0, c1 = math.floor(cc - half), math.ceil(cc + half) + 1
    patch = np.zeros((r1 - r0, c1 - c0), np.float32)
    # The soma's outline lives on its own box, so dendrites never change it.
    s0, s1 = math.floor(rc - soma_half), math.ceil(rc + soma_half) + 1
    t0, t1 = math.floor(cc - soma_half), math.ceil(cc + soma_half) + 1
    dist = pm.hypot(np.arange(s0, s1)[:, None] - rc, np.arange(t0, t1)[None, :] - cc)
    r_eff = np.full(dist.shape, radius_px)
    if irregularity > 0:
        noise = pm.gaussian_filter(rng.standard_normal(dist.shape), max(radius_px / 2, 1.0))
        noise /= np.max(np.abs(noise)) + 1e-12
        r_eff = radius_px * (1 + irregularity * noise)
    patch[s0 - r0 : s1 - r0, t0 - c0 : t1 - c0] = dist <= r_eff
    if morphology == "cytosolic":
        for y, x, radius, value in dendrite_stamps(
            (rc, cc), radius_px, dendrite_length_px, dendrite_width_px, rng
        ):
            _stamp_disk(patch, y - r0, x - c0, radius, value)
    if not patch.any():  # a sub-pixel soma still lights its nearest pixel
        patch[int(np.clip(round(rc) - r0, 0, patch.shape[0] - 1)),
              int(np.clip(round(cc) - c0, 0, patch.shape[1] - 1))] = 1.0  # fmt: skip
    # Clip to the canvas.
    top, left = max(r0, 0), max(c0, 0)
    bottom, right = min(r1, canvas_shape[0]), min(c1, canvas_shape[1])
    if top >= bottom or left >= right:
        return (0, 0), np.zeros((0, 0), np.float32)
    return (top, left), patch[top - r0 : bottom - r0, left - c0 : right - c0]


def dendrite_stamps(center_rc, radius_px, length_px, width_px, rng):
    """Disk stamps (row, col, radius, value) tracing a cell's dendrites.

    Each dendrite is a tapering random walk from the soma edge, one pixel per step,
    occasionally splitting by Murray's law into a thinner main and side branch.
    """
    rc, cc = center_rc
    lo, hi = DENDRITE_COUNT_RANGE
    n = int(np.clip(rng.poisson(DENDRITE_COUNT_MEAN), lo, hi))
    base = rng.uniform(0, 2 * np.pi)
    angles = base + np.arange(n) * 2 * np.pi / n + rng.normal(0, DENDRITE_ANGLE_JITTER_RAD, n)
    tip, root = DENDRITE_INTENSITY
    stamps = []
    for theta in angles:
        length = length_px * rng.uniform(*DENDRITE_LENGTH_RANGE)
        start = DENDRITE_START_FRACTION * radius_px
        stack = [
            (rc + start * pm.sin(theta), cc + start * pm.cos(theta), theta, length, width_px,
             DENDRITE_MAX_BRANCHES)
        ]  # fmt: skip
        while stack:
            y, x, heading, remaining, width, branches = stack.pop()
            n_steps = max(round(remaining), 2)
            for i in range(n_steps):
                radius = max(0.5 * width * (1 - i / (n_steps - 1)), DENDRITE_MIN_STAMP_RADIUS_PX)
                value = tip + min(radius / (0.5 * width_px), 1.0) * (root - tip)
                stamps.append((y, x, radius, value))
                heading += rng.normal(0, DENDRITE_TURN_SIGMA_RAD)
                y, x = y + pm.sin(heading), x + pm.cos(heading)
                if branches > 0 and i < n_steps - 2 and rng.random() < DENDRITE_BRANCH_PROB:
                    side = -1.0 if rng.random() < 0.5 else 1.0
                    stack.append(
                        (y, x, heading + side * DENDRITE_SIDE_ANGLE_RAD,
                         (n_steps - 1 - i) * DENDRITE_SIDE_LENGTH_FRACTION,
                         width * SIDE_WIDTH_FACTOR, branches - 1)
                    )  # fmt: skip
                    heading -= side * DENDRITE_MAIN_DEFLECT_RAD
                    width *= MAIN_WIDTH_FACTOR
    return stamps


def _stamp_disk(patch: np.ndarray, y: float, x: float, radius: float, value: float) -> None:
    """Raise pixels within ``radius`` of (y, x) to at least ``value`` (max-combine)."""
    r0, r1 = max(math.floor(y - radius), 0), min(math.ceil(y + radius) + 1, patch.shape[0])
    c0, c1 = max(math.floor(x - radius), 0), min(math.ceil(x + radius) + 1, patch.shape[1])
    if r0 >= r1 or c0 >= c1:
        return
    rr = np.arange(r0, r1)[:, None]
    cc = np.arange(c0, c1)[None, :]
    inside = np.square(rr - y) + np.square(cc - x) <= radius * radius
    window = patch[r0:r1, c0:c1]
    np.maximum(window, np.where(inside, np.float32(value), np.float32(0)), out=window)
