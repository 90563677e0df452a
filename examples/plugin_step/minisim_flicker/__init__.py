"""The excitation LED's slow power flicker, as a minisim step from another package."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from minisim.engine import portable_math as pm
from minisim.schema import Quantity
from minisim.steps import StepSpec

#: The step's ground truth: a new quantity, declared once and stored as a coordinate.
FLICKER = Quantity(
    "flicker", "coords", "the LED's flicker", ("frame",), "float32", "relative", "coord",
    "Factor multiplying the light of each frame: 1 + amplitude·sin(2π·frequency_hz·t).",
)  # fmt: skip


class Flicker(StepSpec):
    """Slow flicker of the excitation LED's power.

    The movie reaching the sensor is multiplied by ``1 + amplitude·sin(2π·frequency_hz·t)``
    (``t = frame / fps``), recorded per frame as the ``flicker`` coordinate.

    Parameters
    ----------
    amplitude : float
        Relative depth of the flicker, in [0, 1).
    frequency_hz : float
        Flicker frequency in Hz (> 0).
    """

    kind: Literal["flicker"] = "flicker"
    amplitude: float = Field(0.02, ge=0, lt=1)
    frequency_hz: float = Field(0.5, gt=0)

    order: ClassVar[float] = 115  # after the scope's fields (110), before the sensor (120)
    provides: ClassVar[tuple] = (FLICKER, "observed")
    writes_movie: ClassVar[bool] = True

    def build(self, scene):
        movie = scene.fov_movie(np.dtype(scene.spec.output.store_dtype))
        gain = scene.frame_map(
            ("flicker", "gain"),
            flicker_gain,
            (),
            movie.dtype,
            constants=[
                self.amplitude,
                self.frequency_hz,
                scene.spec.acquisition.fps,
                movie.dtype.str,
            ],  # fmt: skip
        )
        flickered = scene.pixel_map(
            ("flicker",), multiply_frames, scene.fov_shape, movie.dtype,
            inputs=[(movie, 0), (gain, 0)],
        )  # fmt: skip
        return scene.evolve(movie=flickered, coords={"flicker": ("frame", gain)})


def flicker_gain(start: int, stop: int, amplitude: float, frequency_hz: float, fps: float,
                 dtype: str) -> np.ndarray:  # fmt: skip
    """The factor of frames [start, stop): a pure function of the absolute frame index."""
    t = np.arange(start, stop) / fps
    # portable_math's sine gives the same bits on every CPU (numpy's SIMD sine does not).
    return (1.0 + amplitude * pm.sin(2.0 * np.pi * frequency_hz * t)).astype(dtype)


def multiply_frames(start: int, stop: int, frames: np.ndarray, gain: np.ndarray) -> np.ndarray:
    return frames * gain[:, None, None]
