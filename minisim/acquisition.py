"""The physical interface: optics, sensor, tissue and the acquisition that ties them.

Specs speak physical units only (µm, s, Hz, nm). Pixels and frames are derived here, so
every other module converts through :class:`Acquisition` rather than redoing the algebra.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .engine import portable_math as pm
from .errors import SpecWarning, user_stacklevel

#: Every float of a spec is finite: NaN and ±inf are rejected (also by ``FrozenModel``'s
#: config, so a bare ``float`` field is finite too).
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]

#: Refractive index of tissue used for the automatic depth of field.
TISSUE_REFRACTIVE_INDEX = 1.33
#: Gaussian σ of the diffraction-limited PSF, in units of λ/NA.
DIFFRACTION_SIGMA_PER_LAMBDA_OVER_NA = 0.21
#: Depths beyond 10 mm are deeper than any brain a miniscope images (see minisim.limits).
MAX_DEPTH_UM = 10_000.0
#: Fluorescence emission lies between the near UV and the near infrared.
EMISSION_RANGE_NM = (200.0, 2000.0)
#: Frame rates above 100 kHz are beyond any camera.
MAX_FPS = 100_000.0
#: Frames per recording (see minisim.limits.MAX_FRAMES).
MAX_FRAMES = 10_000_000


def warn_odd(message: str) -> None:
    """A legal but unusual value: warn :class:`SpecWarning` at the user's constructor."""
    import warnings

    warnings.warn(message, SpecWarning, stacklevel=user_stacklevel())


class FrozenModel(BaseModel):
    """Base of every spec model: immutable, typos in field names are errors, and every
    float (nested ones too) must be finite."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Optics(FrozenModel):
    """The objective: numerical aperture, magnification, emission wavelength.

    Parameters
    ----------
    na : float
        Numerical aperture (> 0).
    magnification : float
        Object-to-sensor magnification (> 0).
    emission_nm : float
        Emission wavelength in nm (> 0).
    depth_of_field_um : float or "auto"
        Half depth of field in µm; ``"auto"`` uses ``1.33·λ/NA²``.
    field_curvature_radius_um : float or None
        Radius of the curved focal surface in µm; ``None`` is a flat field.
    """

    na: PositiveFloat = 0.45
    magnification: PositiveFloat = 8.0
    emission_nm: PositiveFloat = 525.0
    depth_of_field_um: PositiveFloat | Literal["auto"] = "auto"
    field_curvature_radius_um: PositiveFloat | None = None

    @model_validator(mode="after")
    def _physical(self) -> Optics:
        if self.na > TISSUE_REFRACTIVE_INDEX:
            raise ValueError(
                f"optics.na={self.na:g} exceeds the tissue's refractive index "
                f"{TISSUE_REFRACTIVE_INDEX} (NA = n·sin θ ≤ n): use na ≤ {TISSUE_REFRACTIVE_INDEX}"
                " (miniscope objectives are 0.2–0.6)"
            )
        lo, hi = EMISSION_RANGE_NM
        if not lo <= self.emission_nm <= hi:
            raise ValueError(
                f"optics.emission_nm={self.emission_nm:g} is outside fluorescence's "
                f"{lo:g}–{hi:g} nm: give the indicator's emission peak in nm (GCaMP: 525)"
            )
        if self.magnification > 1000:
            raise ValueError(
                f"optics.magnification={self.magnification:g} exceeds 1000×, beyond any "
                "objective: give the object-to-sensor magnification (miniscopes: 2–20×)"
            )
        if self.depth_of_field_um != "auto" and self.depth_of_field_um > MAX_DEPTH_UM:
            raise ValueError(
                f"optics.depth_of_field_um={self.depth_of_field_um:g} exceeds {MAX_DEPTH_UM:g} "
                "µm (deeper than any brain): use 'auto' or a half depth of field in µm"
            )
        if self.na > 1.0:
            warn_odd(
                f"optics.na={self.na:g} is above 1, which only immersion objectives reach "
                "(miniscopes: 0.2–0.6): check the numerical aperture"
            )
        return self

    @property
    def emission_um(self) -> float:
        return self.emission_nm / 1000.0

    @property
    def resolved_depth_of_field_um(self) -> float:
        """Half depth of field in µm (``n·λ/NA²`` when ``"auto"``)."""
        if self.depth_of_field_um == "auto":
            return TISSUE_REFRACTIVE_INDEX * self.emission_um / (self.na * self.na)
        return float(self.depth_of_field_um)

    @property
    def diffraction_sigma_um(self) -> float:
        """Gaussian σ of the in-focus PSF, ``0.21·λ/NA`` µm."""
        return DIFFRACTION_SIGMA_PER_LAMBDA_OVER_NA * self.emission_um / self.na

    @property
    def collection_efficiency(self) -> float:
        """Fraction of emitted light collected, up to a constant: ``NA²``."""
        return self.na * self.na

    def defocus_sigma_um(self, depth_um, focal_um):
        """Geometric defocus blur ``σ = NA·|z − z_focal|`` (µm); conserves intensity."""
        return self.na * np.abs(np.asarray(depth_um, float) - focal_um)

    def curvature_shift_um(self, radius_um):
        """How much shallower an off-axis point at field radius r focuses (≥ 0)."""
        r = np.abs(np.asarray(radius_um, float))
        if self.field_curvature_radius_um is None:
            return np.zeros_like(r)
        big_r = self.field_curvature_radius_um
        r = np.minimum(r, big_r)
        return big_r - np.sqrt(big_r * big_r - r * r)


class ImageSensor(FrozenModel):
    """The bare detector: geometry, quantum efficiency, read noise, gain, ADC depth, and a
    real CMOS sensor's imperfections (black level, dark current, fixed pattern, row noise)."""

    n_px_height: Annotated[int, Field(gt=0)] = 256
    n_px_width: Annotated[int, Field(gt=0)] = 256
    pixel_pitch_um: PositiveFloat = 3.0
    quantum_efficiency: Annotated[float, Field(gt=0, le=1)] = 0.7
    read_noise_e: NonNegativeFloat = 2.0
    gain_adu_per_e: PositiveFloat = 1.0
    bit_depth: Annotated[int, Field(gt=0, le=16)] = 8
    # A real CMOS sensor's imperfections (minisim.steps.sensor_pattern). Zero by default:
    # the Miniscope V4's sensor datasheet values are not published with the scope, so
    # users set the numbers of their own camera (an EMVA 1288 report gives all of them).
    black_level_adu: NonNegativeFloat = 0.0
    dark_current_e_per_s: NonNegativeFloat = 0.0
    dsnu_e: NonNegativeFloat = 0.0
    prnu: Annotated[float, Field(ge=0, le=0.5)] = 0.0
    hot_pixel_fraction: Annotated[float, Field(ge=0, le=1)] = 0.0
    hot_pixel_e_per_s: NonNegativeFloat = 2000.0
    row_noise_e: NonNegativeFloat = 0.0

    @model_validator(mode="after")
    def _physical(self) -> ImageSensor:
        if self.black_level_adu >= self.max_count:
            raise ValueError(
                f"image_sensor.black_level_adu={self.black_level_adu:g} reaches the ADC's "
                f"{self.max_count} counts, so every pixel saturates: use a black level well "
                "below 2**bit_depth − 1 (typically a few % of it)"
            )
        for name in ("dark_current_e_per_s", "hot_pixel_e_per_s"):
            if getattr(self, name) > 1e7:
                raise ValueError(
                    f"image_sensor.{name}={getattr(self, name):g} exceeds 10⁷ e⁻/s, beyond any "
                    "sensor's full well per frame: give the dark current in electrons per "
                    "second (typically 0.1–100; hot pixels 10²–10⁴)"
                )
        for name in ("dsnu_e", "row_noise_e"):
            if getattr(self, name) > 10_000:
                raise ValueError(
                    f"image_sensor.{name}={getattr(self, name):g} exceeds 10 000 electrons, "
                    "beyond any sensor: give it in electrons RMS (typically 0.1–10)"
                )
        if self.pixel_pitch_um > 1000:
            raise ValueError(
                f"image_sensor.pixel_pitch_um={self.pixel_pitch_um:g} exceeds 1000 µm, beyond "
                "any sensor pixel: give the pitch in µm (typically 2–10)"
            )
        if self.read_noise_e > 10_000:
            raise ValueError(
                f"image_sensor.read_noise_e={self.read_noise_e:g} exceeds 10 000 electrons, "
                "beyond any sensor: give the read noise in electrons RMS (typically 1–10)"
            )
        if self.gain_adu_per_e > self.max_count:
            raise ValueError(
                f"image_sensor.gain_adu_per_e={self.gain_adu_per_e:g} exceeds the ADC's "
                f"{self.max_count} counts, so one electron saturates every pixel: use a gain "
                "below 2**bit_depth − 1 (typically 0.1–10 ADU/e⁻)"
            )
        if self.gain_adu_per_e < 1e-6:
            raise ValueError(
                f"image_sensor.gain_adu_per_e={self.gain_adu_per_e:g} is below 1e-6 ADU/e⁻, so "
                "a million electrons read as zero: give the gain in ADU per electron "
                "(typically 0.1–10)"
            )
        if self.read_noise_e > 100:
            warn_odd(
                f"image_sensor.read_noise_e={self.read_noise_e:g} e⁻ is far above modern "
                "sensors (1–10 e⁻): check the units (electrons, not ADU)"
            )
        return self

    @property
    def max_count(self) -> int:
        """Largest ADC value, ``2**bit_depth − 1``."""
        return 2**self.bit_depth - 1

    def photons_to_counts(
        self,
        photons,
        rng: np.random.Generator | None = None,
        *,
        shot_noise: Literal["poisson", "gaussian"] = "poisson",
    ) -> np.ndarray:
        """The sensor's forward model on an array of photons, eagerly (minisim 1.0's name).

        ``electrons = photons · QE`` with Poisson shot noise plus Gaussian read noise (or,
        with ``shot_noise="gaussian"``, one Gaussian of variance ``λ + read_noise²``, as
        minisim 1.0 draws it); ``counts = clip(floor(electrons · gain), 0, max_count)``.
        Without ``rng`` no noise is drawn: the noise-free expected counts.

        The ``Sensor`` step applies the same model inside the movie's graph, with random
        streams keyed by frame, so its bytes do not come from this generator: use this
        for sensor arithmetic on your own arrays. Returns integer counts (uint8 up to
        8 bits, uint16 above), not floats as in minisim 1.0.
        """
        expected = np.maximum(np.asarray(photons, dtype=np.float64), 0.0)
        expected = expected * self.quantum_efficiency
        if rng is None:
            electrons = expected
        elif shot_noise == "poisson":
            electrons = rng.poisson(expected) + self.read_noise_e * rng.standard_normal(
                expected.shape
            )
        elif shot_noise == "gaussian":
            spread = np.sqrt(expected + self.read_noise_e**2)
            electrons = expected + spread * rng.standard_normal(expected.shape)
        else:
            raise ValueError(f"shot_noise={shot_noise!r}: use 'poisson' or 'gaussian'")
        counts = np.clip(np.floor(electrons * self.gain_adu_per_e), 0, self.max_count)
        return counts.astype(np.uint8 if self.bit_depth <= 8 else np.uint16)


class Tissue(FrozenModel):
    """Scattering tissue: mean free paths and the scatter blur growth with depth."""

    scatter_mfp_excitation_um: PositiveFloat = 600.0
    scatter_mfp_emission_um: PositiveFloat = 100.0
    scatter_blur_per_um: NonNegativeFloat = 0.05

    @model_validator(mode="after")
    def _physical(self) -> Tissue:
        for name in ("scatter_mfp_excitation_um", "scatter_mfp_emission_um"):
            value = getattr(self, name)
            if value < 0.1:
                raise ValueError(
                    f"tissue.{name}={value:g} is below 0.1 µm, shorter than a wavelength, "
                    "so no light would leave the surface: give the mean free path in µm "
                    "(brain: 50–600)"
                )
        if self.scatter_blur_per_um > 10:
            raise ValueError(
                f"tissue.scatter_blur_per_um={self.scatter_blur_per_um:g} makes the blur grow "
                "ten times faster than depth: give the σ growth per µm of depth (brain: ~0.05)"
            )
        return self

    @property
    def effective_mfp_um(self) -> float:
        """Round-trip mean free path: ``1/mfp = 1/mfp_ex + 1/mfp_em``."""
        return 1.0 / (1.0 / self.scatter_mfp_excitation_um + 1.0 / self.scatter_mfp_emission_um)

    def attenuation(self, depth_um):
        """Fraction of light surviving the round trip to depth z: ``exp(−z/mfp_eff)``."""
        return pm.exp(-np.asarray(depth_um, float) / self.effective_mfp_um)

    def scatter_sigma_um(self, depth_um):
        """Scatter blur σ in µm, linear in depth."""
        return self.scatter_blur_per_um * np.asarray(depth_um, float)


class Acquisition(FrozenModel):
    """One recording session: the optics, sensor and tissue, frame rate and duration.

    Derived quantities (pixel size, frame count, field of view, per-cell optics) live here
    so the rest of the package never converts units on its own.
    """

    optics: Optics = Optics()
    image_sensor: ImageSensor = ImageSensor()
    tissue: Tissue = Tissue()
    fps: PositiveFloat = 20.0
    duration_s: PositiveFloat = 150.0
    focal_depth_in_tissue_um: NonNegativeFloat | Literal["auto"] = "auto"
    #: Informational only; it does not change the simulation.
    front_working_distance_um: PositiveFloat | None = None

    @model_validator(mode="after")
    def _at_least_one_frame(self) -> Acquisition:
        if self.fps > MAX_FPS:
            raise ValueError(
                f"acquisition.fps={self.fps:g} exceeds {MAX_FPS:g} Hz, beyond any camera: "
                "give the frame rate in Hz (miniscopes: 10–60)"
            )
        frames = self.duration_s * self.fps  # checked before rounding: inf cannot round
        if frames > MAX_FRAMES:
            raise ValueError(
                f"acquisition.duration_s·fps = {self.duration_s:g} s · {self.fps:g} Hz = "
                f"{frames:.3g} frames exceeds {MAX_FRAMES:,} frames per recording: split into "
                f"sessions of at most {MAX_FRAMES:,} frames (shorter duration_s, one spec each)"
            )
        focal = self.focal_depth_in_tissue_um
        if focal != "auto" and focal > MAX_DEPTH_UM:
            raise ValueError(
                f"acquisition.focal_depth_in_tissue_um={focal:g} exceeds {MAX_DEPTH_UM:g} µm, "
                "deeper than any brain: use 'auto' or a depth in µm below the surface"
            )
        if self.n_frames < 1:
            raise ValueError(
                f"duration_s·fps = {self.duration_s}·{self.fps} rounds to {self.n_frames} frames; "
                "a recording needs at least one frame: lengthen duration_s or raise fps"
            )
        return self

    @property
    def pixel_size_um(self) -> float:
        """Size of one sensor pixel in the tissue: pitch / magnification."""
        return self.image_sensor.pixel_pitch_um / self.optics.magnification

    @property
    def n_frames(self) -> int:
        """``round(duration_s·fps)``, half to even."""
        return round(self.duration_s * self.fps)

    def frames(self, seconds: float) -> float:
        """A duration in frames (not rounded): ``seconds·fps``."""
        return seconds * self.fps

    def per_frame(self, rate_hz: float) -> float:
        """A rate (events or probability per second) per frame: ``rate_hz / fps``."""
        return rate_hz / self.fps

    def decay_per_frame(self, tau_s: float) -> float:
        """The factor an exponential with time constant ``tau_s`` decays by in one frame,
        ``exp(−1/(tau_s·fps))`` (the same bits on every CPU)."""
        return float(pm.exp(-1.0 / self.frames(tau_s)))

    @property
    def fov_shape(self) -> tuple[int, int]:
        return (self.image_sensor.n_px_height, self.image_sensor.n_px_width)

    @property
    def fov_um(self) -> tuple[float, float]:
        """Field of view (height, width) in µm."""
        px = self.pixel_size_um
        return (self.image_sensor.n_px_height * px, self.image_sensor.n_px_width * px)

    def um_to_px(self, length_um):
        return np.asarray(length_um, float) / self.pixel_size_um

    def s_to_frame(self, time_s):
        return np.asarray(time_s, float) * self.fps

    def um_to_index(self, y_um, x_um, shape: tuple[int, int]):
        """Fractional (row, col) of optical-centre µm coordinates on a grid of ``shape``."""
        px = self.pixel_size_um
        rows = (shape[0] - 1) / 2 + np.asarray(y_um, float) / px
        cols = (shape[1] - 1) / 2 + np.asarray(x_um, float) / px
        return rows, cols

    def cell_optics(self, depth_um, focal_um):
        """Per-cell blur width (px) and point-source peak brightness at a focal plane.

        Diffraction, scatter and defocus blur add in quadrature; the light losses
        (scatter attenuation, NA² collection) multiply. Defocus conserves intensity, so
        ``sigma_px²·brightness`` does not depend on the focal plane.
        """
        z = np.asarray(depth_um, float)
        optics = self.optics
        sigma0 = pm.hypot(optics.diffraction_sigma_um, self.tissue.scatter_sigma_um(z))
        sigma = pm.hypot(sigma0, optics.defocus_sigma_um(z, focal_um))
        brightness = (
            (sigma0 * sigma0 / (sigma * sigma))
            * self.tissue.attenuation(z)
            * optics.collection_efficiency
        )
        return sigma / self.pixel_size_um, brightness


def ceil_px(length_um: float, pixel_size_um: float) -> int:
    """Whole pixels needed to cover a length, robust to float noise (10.0000001 → 10)."""
    return int(math.ceil(round(length_um / pixel_size_um, 9)))


def sample_field_at(field, y_um: float, x_um: float, pixel_size_um: float) -> float:
    """Value of a static (y, x) field at a position in µm, at the nearest pixel.

    Positions are in the optical-centre frame (origin at the field's centre, +y down,
    +x right), as ``centers_um``; they are rounded to the nearest pixel and clamped to
    the field's edges. ``field=None`` (no such field) gives 1.0, so a missing
    multiplicative field reads as uniform. ``field`` may be numpy or xarray, e.g.
    ``sample_field_at(gt.illumination, y, x, acq.pixel_size_um)``.
    """
    if field is None:
        return 1.0
    values = np.asarray(field)
    if values.ndim != 2:
        raise ValueError(f"field has shape {values.shape}: pass one (y, x) field")
    height, width = values.shape
    row = (height - 1) / 2 + float(y_um) / pixel_size_um
    col = (width - 1) / 2 + float(x_um) / pixel_size_um
    row = int(np.clip(np.round(row), 0, height - 1))
    col = int(np.clip(np.round(col), 0, width - 1))
    return float(values[row, col])
