"""The scope's static optical fields: illumination, vignette (multiplicative), leakage (additive).

They belong to the microscope, not the brain: applied after motion on the field of view,
identical in every frame, and recorded as (y, x) coordinates of the movie so they survive
slicing.
"""

from __future__ import annotations

import functools
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from ..acquisition import Acquisition, NonNegativeFloat, PositiveFloat, warn_odd
from ..engine import Scene, recipe
from ..engine import portable_math as pm
from .base import StepSpec, warn_spec

Fraction = Annotated[float, Field(ge=0, le=1)]
#: A field's centre more than 10 mm off the optical axis is outside any scope.
MAX_OFFSET_UM = 10_000.0
#: Past r^100 a falloff is a step at the corner, not a smooth field.
MAX_EXPONENT = 100.0
#: Intensities in units of a cell's baseline (see cell_activity.MAX_INTENSITY).
MAX_LEVEL = 10_000.0


def radial_falloff(
    shape: tuple[int, int],
    pixel_size_um: float,
    falloff: float,
    exponent: float,
    center_offset_um: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """``1 − (1 − falloff)·(r/r_max)^exponent``: exactly 1 at the centre, ``falloff`` at the
    farthest corner pixel.

    The centre is the field's middle moved by ``center_offset_um`` (dy, dx); ``r_max`` is
    the distance from it to the farthest of the four corner pixel centres.
    """
    key = (tuple(int(n) for n in shape), float(pixel_size_um), float(falloff), float(exponent),
           tuple(float(v) for v in center_offset_um))  # fmt: skip
    return _radial_falloff(*key).copy()


# The same field serves the ground truth, the excitation, the detection floor and each
# worker's pixel kernel (five evaluations of a portable power per recording at build):
# computed once per process.
@functools.lru_cache(maxsize=4)
def _radial_falloff(shape, pixel_size_um, falloff, exponent, center_offset_um) -> np.ndarray:
    height, width = shape
    cy = (height - 1) / 2 + center_offset_um[0] / pixel_size_um
    cx = (width - 1) / 2 + center_offset_um[1] / pixel_size_um
    rows = np.arange(height)[:, None]
    cols = np.arange(width)[None, :]
    radius = pm.hypot(rows - cy, cols - cx)
    r_max = max(pm.hypot(r - cy, c - cx) for r in (0, height - 1) for c in (0, width - 1))
    if r_max <= 0:
        return np.ones(shape)
    field = 1 - (1 - falloff) * pm.power(radius / r_max, exponent)
    field.flags.writeable = False  # shared: callers get copies
    return field


class _RadialField(StepSpec):
    truth_name: ClassVar[str]
    falloff: Fraction
    exponent: PositiveFloat = 2.0
    center_offset_um: tuple[float, float] = (0.0, 0.0)

    @model_validator(mode="after")
    def _physical(self):
        reach = max(abs(v) for v in self.center_offset_um)
        if reach > MAX_OFFSET_UM:
            raise ValueError(
                f"{self.kind}.center_offset_um={self.center_offset_um} puts the centre "
                f"{reach:g} µm off the optical axis, beyond {MAX_OFFSET_UM:g} µm (outside any "
                "scope): give (dy, dx) in µm from the field's centre"
            )
        if self.exponent > MAX_EXPONENT:
            raise ValueError(
                f"{self.kind}.exponent={self.exponent:g} exceeds {MAX_EXPONENT:g}: the falloff "
                "would be a step at the corner, not a smooth field; use 1–4"
            )
        return self

    def check_in_spec(self, spec) -> None:
        half_h, half_w = (extent / 2 for extent in spec.acquisition.fov_um)
        dy, dx = self.center_offset_um
        if abs(dy) > half_h or abs(dx) > half_w:
            warn_spec(
                f"{self.kind}.center_offset_um={self.center_offset_um} puts the centre outside "
                f"the field of view (±{half_h:g} × ±{half_w:g} µm): the field is one-sided; "
                "check the units (µm)"
            )

    def field(self, acq: Acquisition) -> np.ndarray:
        return radial_falloff(
            acq.fov_shape, acq.pixel_size_um, self.falloff, self.exponent, self.center_offset_um
        )

    def photon_field(self, acquisition: Acquisition):
        return self.field(acquisition)

    def build(self, scene: Scene) -> Scene:
        field = self.field(scene.context.acquisition)
        movie = apply_static(scene, self, multiply_frames)
        return scene.evolve(movie=movie, coords={self.truth_name: (("y", "x"), field)})


class IlluminationProfile(_RadialField):
    """Excitation falloff: the light source is brightest at the field's centre.

    It multiplies the movie, sets the excitation that bleaches each cell, and counts in
    detectability and the auto focus. ``falloff`` is the value at the farthest corner.
    """

    kind: Literal["illumination_profile"] = "illumination_profile"
    order: ClassVar[float] = 90
    provides: ClassVar[tuple[str, ...]] = ("illumination", "observed")
    falloff: Fraction = 0.7
    truth_name: ClassVar[str] = "illumination"

    def excitation_field(self, acquisition: Acquisition):
        """The excitation reaching the tissue (relative to the centre), for bleaching."""
        return self.field(acquisition)


class Vignette(_RadialField):
    """Collection falloff: the optics gather less light toward the corners."""

    kind: Literal["vignette"] = "vignette"
    order: ClassVar[float] = 100
    provides: ClassVar[tuple[str, ...]] = ("vignette", "observed")
    falloff: Fraction = 0.5
    truth_name: ClassVar[str] = "vignette"


class Leakage(StepSpec):
    """Additive stray-light glow, uniform or a centred Gaussian.

    Parameters
    ----------
    profile : "gaussian" or "uniform"
    level : float
        Glow at the centre, in scene intensity units (a cell's baseline f0 is 1).
    sigma_um : float or None
        Width of the Gaussian glow; None means a quarter of the smaller field side.
    """

    kind: Literal["leakage"] = "leakage"
    order: ClassVar[float] = 110
    provides: ClassVar[tuple[str, ...]] = ("leakage", "observed")
    profile: Literal["gaussian", "uniform"] = "gaussian"
    level: NonNegativeFloat = 0.1
    sigma_um: PositiveFloat | None = None

    @model_validator(mode="after")
    def _physical(self):
        if self.level > MAX_LEVEL:
            raise ValueError(
                f"leakage.level={self.level:g} exceeds {MAX_LEVEL:g} (units of a cell's "
                "baseline f0 = 1): the glow would bury every cell; use 0–1"
            )
        if self.level > 100:
            warn_odd(
                f"leakage.level={self.level:g} is 100× a cell's baseline: the glow dominates "
                "the movie (typical 0–1)"
            )
        return self

    def field(self, acq: Acquisition) -> np.ndarray:
        height, width = acq.fov_shape
        if self.profile == "uniform":
            return np.full((height, width), self.level)
        sigma_um = self.sigma_um if self.sigma_um is not None else 0.25 * min(acq.fov_um)
        sigma_px = sigma_um / acq.pixel_size_um
        rows = np.arange(height)[:, None] - (height - 1) / 2
        cols = np.arange(width)[None, :] - (width - 1) / 2
        return self.level * pm.exp(-(rows * rows + cols * cols) / (2 * sigma_px * sigma_px))

    def build(self, scene: Scene) -> Scene:
        field = self.field(scene.context.acquisition)
        movie = apply_static(scene, self, add_frames)
        return scene.evolve(movie=movie, coords={"leakage": (("y", "x"), field)})


def apply_static(scene: Scene, step, kernel):
    """The movie (cropped to the field of view, black if none yet) combined with the
    step's field, which each worker rebuilds from the step instead of receiving it."""
    acq = scene.context.acquisition
    movie = scene.fov_movie(scene.context.store_dtype)
    dtype = movie.dtype.str
    field = recipe(
        step.kind,
        field_as,
        step,
        acq,
        dtype,
        token=(step.model_dump_json(), acq.model_dump_json(), dtype),
    )
    return scene.pixel_map(
        (step.kind,), kernel, scene.fov_shape, movie.dtype, inputs=[(movie, 0)], constants=[field]
    )


def field_as(step, acq: Acquisition, dtype: str) -> np.ndarray:
    """A field step's (y, x) field in the movie's dtype."""
    return step.field(acq).astype(dtype)


def multiply_frames(start: int, stop: int, frames: np.ndarray, field: np.ndarray) -> np.ndarray:
    return frames * field


def add_frames(start: int, stop: int, frames: np.ndarray, field: np.ndarray) -> np.ndarray:
    return frames + field
