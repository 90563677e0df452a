"""A real CMOS sensor's imperfections: black level, dark current, fixed pattern, row noise.

Kernels only; the :class:`~minisim.steps.sensor.Sensor` step applies them while it
digitizes, with the detector's parameters from :class:`~minisim.acquisition.ImageSensor`.
Per pixel and frame, in electrons (EMVA 1288 terms)::

    λ        = photons · QE · gain_map + dark_e            (the Poisson mean)
    e        = Poisson(λ) + read_noise · N(0, 1) + dark_offset_e + row_offset_e[frame, y]
    counts   = clip(floor(e · gain_adu_per_e + black_level_adu), 0, 2^bits − 1)

* ``gain_map`` = ``1 + prnu · N(0, 1)`` per pixel (photo-response non-uniformity),
  clipped at 0;
* ``dark_e`` = dark current × exposure (the frame period ``1/fps``), with the hot
  pixels' much larger dark current instead on a ``hot_pixel_fraction`` of pixels; dark
  electrons are shot-noise limited like photo-electrons, so they join the Poisson mean;
* ``dark_offset_e`` = ``dsnu_e · N(0, 1)`` per pixel (dark-signal non-uniformity, a
  fixed offset without shot noise);
* ``row_offset_e`` = ``row_noise_e · N(0, 1)`` per row and frame (banding).

The per-pixel maps are static fields drawn from keyed streams with one purpose each (the
same for every frame, chunk and worker); the row offsets come from a stream keyed by the
frame index. Each effect is skipped entirely when its parameter is zero, so a sensor
without imperfections gives the same bytes as before they existed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..engine import stream
from ..schema import Quantity

#: The stream kind of every sensor draw (the sensor step's kind).
KIND = "sensor"

SENSOR_GAIN = Quantity(
    "sensor_gain", "coords", "the pixel gain map", ("y", "x"), "float64", "relative",
    description="Each pixel's photo-response relative to the nominal gain (1 + prnu·N(0, 1), "
                "clipped at 0): the expected photo-electrons are photons·QE·sensor_gain.",
)  # fmt: skip
SENSOR_OFFSET = Quantity(
    "sensor_offset_adu", "coords", "the dark offset map", ("y", "x"), "float64", "ADU",
    description="Expected count of each pixel in darkness before the ADC's floor: "
                "black level + gain_adu_per_e·(dark electrons + DSNU offset).",
)  # fmt: skip
HOT_PIXELS = Quantity(
    "hot_pixels", "coords", "the hot pixel mask", ("y", "x"), "bool",
    description="Pixels whose dark current is hot_pixel_e_per_s instead of "
                "dark_current_e_per_s.",
)  # fmt: skip
ROW_OFFSET = Quantity(
    "row_offset_e", "coords", "the row noise", ("frame", "y"), "float64", "e-",
    description="Offset added to every pixel of a row in one frame (row_noise_e·N(0, 1)).",
)  # fmt: skip


@dataclass(frozen=True)
class Pattern:
    """The detector's imperfections (small and hashable: the maps are rebuilt from it)."""

    seed: int
    shape: tuple[int, int]
    black_level_adu: float = 0.0
    dark_e: float = 0.0
    hot_pixel_e: float = 0.0
    hot_pixel_fraction: float = 0.0
    dsnu_e: float = 0.0
    prnu: float = 0.0
    row_noise_e: float = 0.0

    @classmethod
    def of(cls, sensor, fps: float, seed: int) -> Pattern:
        """The pattern of an ``ImageSensor`` at a frame rate (exposure = 1/fps)."""
        exposure_s = 1.0 / fps
        return cls(
            seed=seed,
            shape=(sensor.n_px_height, sensor.n_px_width),
            black_level_adu=sensor.black_level_adu,
            dark_e=sensor.dark_current_e_per_s * exposure_s,
            hot_pixel_e=sensor.hot_pixel_e_per_s * exposure_s,
            hot_pixel_fraction=sensor.hot_pixel_fraction,
            dsnu_e=sensor.dsnu_e,
            prnu=sensor.prnu,
            row_noise_e=sensor.row_noise_e,
        )

    @property
    def has_dark(self) -> bool:
        """Is there any dark current (a per-pixel Poisson mean)?"""
        return self.dark_e > 0 or (self.hot_pixel_fraction > 0 and self.hot_pixel_e > 0)

    @property
    def has_offset(self) -> bool:
        """Does darkness read anything but zero on average?"""
        return self.black_level_adu > 0 or self.dsnu_e > 0 or self.has_dark


def hot_pixel_mask(pattern: Pattern) -> np.ndarray:
    """(y, x) bool: a ``hot_pixel_fraction`` of pixels, each independently."""
    if pattern.hot_pixel_fraction <= 0:
        return np.zeros(pattern.shape, bool)
    uniform = stream(pattern.seed, KIND, "hot_pixels").random(pattern.shape)
    return uniform < pattern.hot_pixel_fraction


def gain_map(pattern: Pattern) -> np.ndarray:
    """(y, x) photo-response of each pixel relative to nominal: 1 + prnu·N(0, 1) ≥ 0."""
    if pattern.prnu <= 0:
        return np.ones(pattern.shape)
    normal = stream(pattern.seed, KIND, "prnu").standard_normal(pattern.shape)
    # A negative response is unphysical; at prnu ≤ 0.2 the clip touches < 1e-6 of pixels.
    return np.maximum(1.0 + pattern.prnu * normal, 0.0)


def dark_electrons(pattern: Pattern) -> np.ndarray:
    """(y, x) mean dark electrons per frame: dark current × exposure, hot pixels hotter."""
    dark = np.full(pattern.shape, pattern.dark_e)
    if pattern.hot_pixel_fraction > 0:
        dark[hot_pixel_mask(pattern)] = pattern.hot_pixel_e
    return dark


def dark_offset_electrons(pattern: Pattern) -> np.ndarray:
    """(y, x) fixed dark-signal offset of each pixel in electrons: dsnu_e·N(0, 1)."""
    if pattern.dsnu_e <= 0:
        return np.zeros(pattern.shape)
    return pattern.dsnu_e * stream(pattern.seed, KIND, "dsnu").standard_normal(pattern.shape)


def offset_adu(pattern: Pattern, gain_adu_per_e: float) -> np.ndarray:
    """(y, x) expected dark count before the floor (the ``sensor_offset_adu`` truth)."""
    electrons = dark_electrons(pattern) + dark_offset_electrons(pattern)
    return pattern.black_level_adu + gain_adu_per_e * electrons


@functools.lru_cache(maxsize=8)
def fixed_maps(pattern: Pattern) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """(gain map, dark electrons, dark offset) or None for each absent effect.

    Cached: every frame chunk of a recording reads the same maps, rebuilt once per
    process from the pattern instead of shipped through the graph. Read-only.
    """
    maps = (
        gain_map(pattern) if pattern.prnu > 0 else None,
        dark_electrons(pattern) if pattern.has_dark else None,
        dark_offset_electrons(pattern) if pattern.dsnu_e > 0 else None,
    )
    for field in maps:
        if field is not None:
            field.flags.writeable = False
    return maps


def row_offsets(pattern: Pattern, frame: int) -> np.ndarray:
    """(y,) row offsets of one frame in electrons, keyed by the frame index."""
    normal = stream(pattern.seed, KIND, "row", frame).standard_normal(pattern.shape[0])
    return pattern.row_noise_e * normal


def row_offset_frames(start: int, stop: int, pattern: Pattern) -> np.ndarray:
    """(frame, y) row offsets of frames [start, stop) (the ``row_offset_e`` truth)."""
    out = np.zeros((stop - start, pattern.shape[0]))
    if pattern.row_noise_e > 0:
        for k, frame in enumerate(range(start, stop)):
            out[k] = row_offsets(pattern, frame)
    return out
