"""Vasculature: blood vessels above the imaged cells shade the tissue beneath them.

Each layer grows branching trees from the canvas edges (radii split by Murray's law at
every branch), rasterizes them as blood path length, converts that to transmission with
Beer–Lambert absorption (floored at ``1 − opacity``), and blurs the shadow by the optics
at the layer's depth. The product of the layers multiplies the tissue before motion, so
vessels move with the brain.
"""

from __future__ import annotations

import math
import operator
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from ..acquisition import (
    MAX_DEPTH_UM,
    Acquisition,
    FrozenModel,
    NonNegativeFloat,
    PositiveFloat,
)
from ..engine import Scene, constant, recipe, stream
from ..engine import portable_math as pm
from ..engine.multiscale import MultiScaleFootprints
from .base import StepSpec, warn_spec
from .fields import multiply_frames
from .optics import resolve_focal_plane
from .vessel_dilation import (
    VESSEL_DILATION,
    VesselDilation,
    dilation_series,
    path_length,
    vessel_pairs,
)

KIND = "vasculature"
#: Growth stops after this many segments per layer.
MAX_SEGMENTS = 2000
#: The widest vessels of a mouse brain (pial veins) are a few hundred µm across.
MAX_VESSEL_RADIUS_UM = 500.0


class VesselLayer(FrozenModel):
    """One layer of vessel trees at a depth.

    Parameters
    ----------
    depth_um : float
        Depth of the layer (sets how much the optics blur its shadow).
    n_roots : int
        Trees grown inward from random points on the canvas edges.
    root_radius_um, min_radius_um : float
        Radius at the root; branches thinner than the minimum stop.
    opacity : float
        Largest fraction of light a vessel can block (transmission floor ``1 − opacity``).
    absorption_per_um : float
        Beer–Lambert absorption of blood per µm of path.
    branch_prob : float
        Chance of a branch at each growth step.
    tortuosity_deg : float
        Standard deviation of the heading change per step.
    branch_angle_deg : float
        Main-branch deflection at a split (the side branch turns further).
    branch_area_main : float
        Murray split: the main branch keeps this share of r³ (0.5 < x < 1).
    step_per_radius : float
        Growth step length in units of the current radius.
    """

    depth_um: NonNegativeFloat = 30.0
    n_roots: Annotated[int, Field(ge=1)] = 4
    root_radius_um: PositiveFloat = 22.0
    min_radius_um: PositiveFloat = 2.0
    opacity: Annotated[float, Field(gt=0, le=1)] = 0.85
    absorption_per_um: PositiveFloat = 0.04
    branch_prob: Annotated[float, Field(ge=0, lt=1)] = 0.2
    tortuosity_deg: NonNegativeFloat = 8.0
    branch_angle_deg: NonNegativeFloat = 30.0
    branch_area_main: Annotated[float, Field(gt=0.5, lt=1)] = 0.7
    step_per_radius: PositiveFloat = 1.5

    @model_validator(mode="after")
    def _radii(self):
        if self.min_radius_um >= self.root_radius_um:
            raise ValueError(
                f"min_radius_um={self.min_radius_um:g} must be smaller than root_radius_um="
                f"{self.root_radius_um:g}: a tree needs room to taper"
            )
        if self.root_radius_um > MAX_VESSEL_RADIUS_UM:
            raise ValueError(
                f"vasculature layer root_radius_um={self.root_radius_um:g} exceeds "
                f"{MAX_VESSEL_RADIUS_UM:g} µm, wider than any brain vessel: give the radius in "
                "µm (pial vessels: 10–100)"
            )
        if self.depth_um > MAX_DEPTH_UM:
            raise ValueError(
                f"vasculature layer depth_um={self.depth_um:g} is deeper than any brain (limit "
                f"{MAX_DEPTH_UM:g} µm): give the depth in µm below the surface"
            )
        for name in ("tortuosity_deg", "branch_angle_deg"):
            if getattr(self, name) > 360:
                raise ValueError(
                    f"vasculature layer {name}={getattr(self, name):g} is more than a full turn: "
                    "give an angle in degrees, 0–360"
                )
        return self


class Vasculature(StepSpec):
    """Vessel shading of the tissue. Off unless ``enabled`` with at least one layer.

    With ``dilation`` (a :class:`VesselDilation`), the vessels breathe: every layer's
    radii follow the local population's activity after a neurovascular delay plus a slow
    vasomotion, frame by frame (ground truth ``vessel_dilation``).
    """

    kind: Literal["vasculature"] = KIND
    order: ClassVar[float] = 70
    needs: ClassVar[tuple[str, ...]] = ("centers_um",)
    reads: ClassVar[tuple[str, ...]] = (
        "footprints.planted",
        "footprints.observed",
        "focal_depth_um",
        "population_calcium",
    )
    provides: ClassVar[tuple[str, ...]] = (
        "vessel_overlap_fraction",
        "vessel_transmission",
        "vasculature_mask",
    )
    may_provide: ClassVar[tuple] = ("observed", VESSEL_DILATION)
    writes_movie = True
    enabled: bool = False
    layers: tuple[VesselLayer, ...] = ()
    dilation: VesselDilation | None = None

    def dilation_series(self, scene: Scene):
        """The (frame, layer) dilation over the whole recording: the activity's mean needs
        every frame, so it is a whole-recording statistic."""
        acq = scene.context.acquisition
        population = scene.signals.get("population_calcium")
        return scene.statistic(
            ("vasculature", "dilation"),
            dilation_frames,
            (len(self.layers),),
            np.float64,
            inputs=[] if population is None else [(population, 0)],
            constants=[
                constant(
                    (population is not None, self.dilation, acq.fps, scene.seed, len(self.layers)),
                    "vessel-dilation",
                )
            ],
        )

    @property
    def active(self) -> bool:
        return self.enabled and bool(self.layers)

    def check_in_spec(self, spec) -> None:
        if self.enabled and not self.layers:
            warn_spec(
                "vasculature has enabled=True but no layers, so it draws nothing: pass "
                "Vasculature(enabled=True, layers=[VesselLayer()])"
            )
        if self.layers and not self.enabled:
            warn_spec(
                f"vasculature has {len(self.layers)} layer(s) but enabled=False, so it does "
                "nothing: pass Vasculature(enabled=True, layers=[...]) to draw them"
            )

    def build(self, scene: Scene) -> Scene:
        if not self.enabled or not self.layers:
            return scene
        acq: Acquisition = scene.context.acquisition
        trees = [
            grow_layer(layer, scene.canvas_shape, acq.pixel_size_um, scene.seed, index)
            for index, layer in enumerate(self.layers)
        ]
        focal = scene.focal
        if focal is None:  # no optics: the plane the acquisition names (or the cells' median)
            focal = resolve_focal_plane(
                acq.focal_depth_in_tissue_um, scene.cells["centers_um"][:, 0]
            )
        footprints = scene.footprints.get("observed")
        if footprints is None:
            footprints = MultiScaleFootprints.full_resolution(scene.footprints["planted"])
        # Lazy when the focal plane or the footprints wait on the traces (sensor auto focus).
        mask = scene.cell_call(("vasculature", "mask"), vessel_mask, acq, self.layers, trees,
                               scene.canvas_shape, focal)  # fmt: skip
        per_cell = scene.cell_call(("vasculature", "cells"), vessel_cell_effects, footprints,
                                   mask, scene.cells["centers_um"], acq)  # fmt: skip
        n = scene.n_cells
        overlap, transmission = (
            scene.cell_array(("vasculature", name), scene.cell_call(
                ("vasculature", name, "value"), operator.getitem, per_cell, i), (n,), float)
            for i, name in enumerate(("overlap", "cell"))
        )  # fmt: skip
        mask_coord = scene.cell_array(("vasculature", "coord"), mask, scene.canvas_shape, float)
        canvas_movie = scene.movie
        breathing = self.dilation is not None
        dilation = self.dilation_series(scene) if breathing else None
        if breathing and canvas_movie is not None:
            geometry = recipe(
                "vasculature-geometry",
                vessel_geometry,
                self.layers,
                scene.canvas_shape,
                acq.pixel_size_um,
                scene.seed,
                token=(self.model_dump_json(), scene.canvas_shape, acq.pixel_size_um, scene.seed),
            )
            canvas_movie = scene.pixel_map(
                ("vasculature",),
                breathe_frames,
                scene.canvas_shape,
                canvas_movie.dtype,
                inputs=[(canvas_movie, 0), (dilation, 0)],
                constants=[
                    geometry,
                    constant((acq, self.layers), "vessel-layers"),
                    # A number, or one lazy task when the auto focus waits on the traces.
                    constant(scene.cell_call(("vasculature", "focal"), float, focal), "focal"),
                ],
            )
        elif canvas_movie is not None:
            canvas_movie = scene.pixel_map(
                ("vasculature",),
                multiply_frames,
                scene.canvas_shape,
                canvas_movie.dtype,
                inputs=[(canvas_movie, 0)],
                constants=[
                    constant(
                        scene.cell_call(
                            ("vasculature", "dtype"), np.asarray, mask, canvas_movie.dtype.str
                        ),
                        "vessels",
                    )
                ],  # fmt: skip
            )
        top, left, height, width = scene.fov_window
        coords = {
            "vasculature_mask": (("y", "x"), mask_coord[top : top + height, left : left + width])
        }
        if breathing:
            coords["vessel_dilation"] = (("frame", "vessel_layer"), dilation)
        return scene.evolve(
            movie=canvas_movie,
            cells={"vessel_overlap_fraction": overlap, "vessel_transmission": transmission},
            coords=coords,
        )


# --------------------------------------------------------------------------- kernels


def murray_children(radius: float, main_share: float) -> tuple[float, float]:
    """Radii of the main and side branch: r_main³ + r_side³ = r³ (Murray's law)."""
    return (
        radius * float(pm.power(main_share, 1 / 3)),
        radius * float(pm.power(1 - main_share, 1 / 3)),
    )


def grow_layer(
    layer: VesselLayer, canvas_shape, pixel_size_um: float, seed: int, index: int
) -> np.ndarray:
    """Segments (y0, x0, y1, x1, r) in canvas µm (top-left origin) of a layer's trees."""
    height_um, width_um = canvas_shape[0] * pixel_size_um, canvas_shape[1] * pixel_size_um
    segments: list[tuple] = []
    for root in range(layer.n_roots):
        rng = stream(seed, KIND, "tree", index, root)
        edge = int(rng.integers(0, 4))
        if edge == 0:  # top, heading down
            y, x, heading = 0.0, rng.uniform(0, width_um), rng.uniform(0.25, 0.75) * math.pi
        elif edge == 1:  # bottom, heading up
            y, x, heading = height_um, rng.uniform(0, width_um), rng.uniform(1.25, 1.75) * math.pi
        elif edge == 2:  # left, heading right
            y, x, heading = rng.uniform(0, height_um), 0.0, rng.uniform(-0.4, 0.4) * math.pi
        else:  # right, heading left
            y, x, heading = rng.uniform(0, height_um), width_um, rng.uniform(0.6, 1.4) * math.pi
        grow_tree(layer, (y, x), heading, (height_um, width_um), rng, segments)
        if len(segments) >= MAX_SEGMENTS:
            break
    return np.asarray(segments, float).reshape(-1, 5)


def grow_tree(layer: VesselLayer, start, heading, extent, rng, segments: list) -> None:
    """Grow one tree depth-first, appending segments until the radius or budget runs out."""
    tortuosity = math.radians(layer.tortuosity_deg)
    angle = math.radians(layer.branch_angle_deg)
    stack = [(start[0], start[1], heading, layer.root_radius_um)]
    while stack and len(segments) < MAX_SEGMENTS:
        y, x, heading, radius = stack.pop()
        while radius >= layer.min_radius_um and len(segments) < MAX_SEGMENTS:
            step = layer.step_per_radius * radius
            ny, nx = y + step * float(pm.sin(heading)), x + step * float(pm.cos(heading))
            segments.append((y, x, ny, nx, radius))
            y, x = ny, nx
            if not (0 <= y <= extent[0] and 0 <= x <= extent[1]):
                break  # left the tissue (the crossing segment is kept)
            heading += rng.normal(0.0, tortuosity)
            if rng.random() < layer.branch_prob:
                main, side = murray_children(radius, layer.branch_area_main)
                turn = -1.0 if rng.random() < 0.5 else 1.0
                stack.append((y, x, heading + turn * angle * (radius / side), side))
                heading -= turn * angle
                radius = main


def rasterize_vessels(segments: np.ndarray, canvas_shape, pixel_size_um: float) -> np.ndarray:
    """Blood path length (µm) through each pixel: chords 2·sqrt(r² − d²) of capsules, summed."""
    length = np.zeros(canvas_shape)
    px = pixel_size_um
    for y0, x0, y1, x1, r in segments:
        r0 = max(int(math.floor((min(y0, y1) - r) / px)), 0)
        r1 = min(int(math.ceil((max(y0, y1) + r) / px)) + 1, canvas_shape[0])
        c0 = max(int(math.floor((min(x0, x1) - r) / px)), 0)
        c1 = min(int(math.ceil((max(x0, x1) + r) / px)) + 1, canvas_shape[1])
        if r0 >= r1 or c0 >= c1:
            continue
        py = (np.arange(r0, r1)[:, None] + 0.5) * px  # pixel centres, top-left origin
        pxx = (np.arange(c0, c1)[None, :] + 0.5) * px
        dy, dx = y1 - y0, x1 - x0
        norm = dy * dy + dx * dx
        t = (
            np.clip(((py - y0) * dy + (pxx - x0) * dx) / norm, 0, 1)
            if norm > 0
            else np.zeros_like(py + pxx)
        )
        d2 = np.square(py - (y0 + t * dy)) + np.square(pxx - (x0 + t * dx))
        inside = d2 < r * r
        length[r0:r1, c0:c1] += np.where(inside, 2 * np.sqrt(np.maximum(r * r - d2, 0)), 0.0)
    return length


def transmission(length_um: np.ndarray, opacity: float, absorption_per_um: float) -> np.ndarray:
    """Beer–Lambert shading in [1 − opacity, 1]."""
    return 1 - opacity * (1 - pm.exp(-absorption_per_um * length_um))


def vessel_mask(acq: Acquisition, layers, trees, canvas_shape, focal_um) -> np.ndarray:
    """Product of every layer's transmission, each blurred by the optics at its depth."""
    mask = np.ones(canvas_shape)
    focal = float(focal_um)
    for layer, segments in zip(layers, trees, strict=True):
        shade = transmission(rasterize_vessels(segments, canvas_shape, acq.pixel_size_um),
                             layer.opacity, layer.absorption_per_um)  # fmt: skip
        mask *= pm.gaussian_filter(shade, layer_blur_px(acq, layer, focal), mode="nearest")
    return mask


def layer_blur_px(acq: Acquisition, layer: VesselLayer, focal: float) -> float:
    """The blur (σ, px) of a layer's shadow: diffraction ⊕ scatter ⊕ defocus at its depth."""
    sigmas = (
        acq.optics.diffraction_sigma_um,
        float(acq.tissue.scatter_sigma_um(layer.depth_um)),
        float(acq.optics.defocus_sigma_um(layer.depth_um, focal)),
    )
    sigma_um = math.sqrt(sum(s * s for s in sigmas))  # blurs add in quadrature
    return sigma_um / acq.pixel_size_um


# ------------------------------------------------------------------- breathing vessels


def dilation_frames(start: int, stop: int, *args) -> np.ndarray:
    """The (frame, layer) dilation of the whole recording (one task: it needs every frame)."""
    *population, (has_population, dilation, fps, seed, n_layers) = args
    return dilation_series(population[0] if has_population else None, stop - start, n_layers,
                           dilation, fps, seed)  # fmt: skip


def vessel_geometry(layers, canvas_shape, pixel_size_um: float, seed: int) -> list:
    """Each layer's (pixel, distance², radius) pairs (rebuilt on the worker that needs them)."""
    return [
        vessel_pairs(
            grow_layer(layer, canvas_shape, pixel_size_um, seed, index), canvas_shape, pixel_size_um
        )  # fmt: skip
        for index, layer in enumerate(layers)
    ]


def breathing_mask(geometry, dilation_row, acq: Acquisition, layers, canvas_shape, focal):
    """One frame's vessel shading with every layer's radii scaled by 1 + its dilation."""
    mask = np.ones(canvas_shape)
    for layer, pairs, change in zip(layers, geometry, dilation_row, strict=True):
        length = path_length(pairs, 1.0 + float(change), canvas_shape)
        shade = transmission(length, layer.opacity, layer.absorption_per_um)
        mask *= pm.gaussian_filter(shade, layer_blur_px(acq, layer, float(focal)), mode="nearest")
    return mask


def breathe_frames(start, stop, frames, dilation, geometry, acq_layers, focal) -> np.ndarray:
    """Frames [start, stop) of the tissue, each shaded by its own vessel radii."""
    acq, layers = acq_layers
    out = np.empty_like(frames)
    for k in range(stop - start):
        mask = breathing_mask(geometry, dilation[k], acq, layers, frames.shape[1:], focal)
        out[k] = frames[k] * mask.astype(frames.dtype)
    return out


def vessel_cell_effects(
    footprints: MultiScaleFootprints, mask: np.ndarray, centers_um, acq: Acquisition
):
    """Per cell: the footprint-weighted fraction of light vessels block, and the
    transmission at the cell's centre pixel (for detectability)."""
    overlap = np.zeros(footprints.n_cells)
    for level in footprints.levels:
        f = level.factor  # coarse footprints are weighted at their nodes
        ny, nx = level.footprints.canvas_shape
        nodes = mask[np.minimum(np.arange(ny) * f, mask.shape[0] - 1)][
            :, np.minimum(np.arange(nx) * f, mask.shape[1] - 1)
        ]
        for j, ((row, col), patch) in enumerate(level.footprints.patches()):
            h, w = patch.shape
            total = float(patch.sum())
            if total > 0:
                shaded = float((patch * nodes[row : row + h, col : col + w]).sum())
                overlap[level.cells[j]] = 1 - shaded / total
    rows, cols = acq.um_to_index(centers_um[:, 1], centers_um[:, 2], mask.shape)
    rows = np.clip(np.round(rows).astype(int), 0, mask.shape[0] - 1)
    cols = np.clip(np.round(cols).astype(int), 0, mask.shape[1] - 1)
    return overlap, mask[rows, cols]
