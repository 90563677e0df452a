"""The sensor: photons → shot noise → read noise → gain → integer ADC counts.

The only step that produces counts. Every frame's noise comes from streams keyed by the
frame index, so any frame can be recomputed alone and gives the same counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import dask.array as da
import numpy as np
from pydantic import model_validator

from ..acquisition import Acquisition, ImageSensor, PositiveFloat
from ..engine import Scene, constant, map_ranges, stream
from ..engine.backend import compiled as compiled_kernels
from ..engine.normal import standard_normal
from ..engine.poisson import poisson
from .base import StepSpec, warn_spec
from .detection import calcium_range, is_detectable, temporal_noise_e
from .sensor_pattern import (
    HOT_PIXELS,
    ROW_OFFSET,
    SENSOR_GAIN,
    SENSOR_OFFSET,
    Pattern,
    fixed_maps,
    gain_map,
    hot_pixel_mask,
    offset_adu,
    row_offset_frames,
    row_offsets,
)

KIND = "sensor"
#: Photons per pixel per frame per unit of scene intensity: a full well holds ~10⁵
#: electrons, and past ~10¹⁸ the Poisson draw cannot represent the count at all.
MAX_PHOTONS_PER_UNIT = 1e7


class Sensor(StepSpec):
    """Digitize the light reaching the sensor into integer counts.

    Parameters
    ----------
    photons_per_unit : float
        Photons reaching a pixel per unit of scene intensity per frame (the exposure:
        excitation power × integration time × collection constants). It scales every
        light source alike.
    shot_noise : "poisson" or "gaussian"
        ``"poisson"`` (default) draws the detected electrons from a Poisson law, then adds
        Gaussian read noise. ``"gaussian"`` replaces both by one normal draw with the same
        mean and variance (λ + read²): several times faster, indistinguishable at more than
        a few tens of electrons per pixel, but wrong in the dark.

    The detector itself (quantum efficiency, read noise, gain, bit depth) is described by
    ``Acquisition.image_sensor``.
    """

    kind: Literal["sensor"] = KIND
    order: ClassVar[float] = 120
    reads: ClassVar[tuple[str, ...]] = (
        "centers_um",
        "C",
        "calcium_extremes",
        "observed_gain",
        "observed_peak",
        "vessel_transmission",
        "in_focus",
    )
    provides: ClassVar[tuple[str, ...]] = ("detectable", "observed")
    #: The detector's imperfections, each present when its ImageSensor parameter is set.
    may_provide: ClassVar[tuple] = (SENSOR_GAIN, SENSOR_OFFSET, HOT_PIXELS, ROW_OFFSET)
    photons_per_unit: PositiveFloat = 100.0
    shot_noise: Literal["poisson", "gaussian"] = "poisson"

    @model_validator(mode="before")
    @classmethod
    def _hardware_lives_on_image_sensor(cls, data):
        if isinstance(data, dict):
            misplaced = sorted(set(data) & set(ImageSensor.model_fields))
            if misplaced:
                raise ValueError(
                    f"{', '.join(misplaced)} describe the detector: set them on "
                    f"Acquisition(image_sensor=ImageSensor({misplaced[0]}=...)), not on Sensor"
                )
        return data

    @model_validator(mode="after")
    def _physical(self):
        if self.photons_per_unit > MAX_PHOTONS_PER_UNIT:
            raise ValueError(
                f"sensor.photons_per_unit={self.photons_per_unit:g} exceeds "
                f"{MAX_PHOTONS_PER_UNIT:g}: a pixel's full well holds ~10⁵ electrons, so every "
                "pixel would saturate; give the photons per pixel per frame at unit intensity "
                "(typically 10–1000)"
            )
        return self

    def check_in_spec(self, spec) -> None:
        sensor = spec.acquisition.image_sensor
        baseline = self.photons_per_unit * sensor.quantum_efficiency * sensor.gain_adu_per_e
        # Optics dims cells (NA², scattering) well below one unit, so only warn when even a
        # tenth of a unit would fill the ADC.
        if baseline > 10 * sensor.max_count:
            warn_spec(
                f"sensor.photons_per_unit={self.photons_per_unit:g} × quantum_efficiency × "
                f"gain_adu_per_e = {baseline:.3g} counts for one unit of intensity (a cell's "
                f"baseline), over 10× the ADC's {sensor.max_count}: the movie saturates; lower "
                "photons_per_unit or image_sensor.gain_adu_per_e"
            )

    def readout(self, acq: Acquisition, seed: int, noise: bool = True) -> Readout:
        sensor = acq.image_sensor
        return Readout(
            seed=seed,
            photons_per_unit=self.photons_per_unit,
            quantum_efficiency=sensor.quantum_efficiency,
            read_noise_e=sensor.read_noise_e,
            gain_adu_per_e=sensor.gain_adu_per_e,
            max_count=sensor.max_count,
            dtype=count_dtype(sensor.bit_depth).str,
            shot_noise=self.shot_noise,
            noise=noise,
            pattern=Pattern.of(sensor, acq.fps, seed),
        )

    def build(self, scene: Scene) -> Scene:
        movie = scene.fov_movie()  # darkness still reads out as noise
        readout = scene.context.readout
        counts = scene.pixel_map(
            ("sensor",),
            digitize_frames,
            movie.shape[1:],
            np.dtype(readout.dtype),
            inputs=[(movie, 0)],
            constants=[constant(readout, "readout")],
        )
        return scene.evolve(
            movie=counts,
            cells={"detectable": self.detectable(scene)},
            coords=self.pattern_truth(scene, readout),
        )

    def pattern_truth(self, scene: Scene, readout: Readout) -> dict:
        """Ground truth of the detector's imperfections that are present (maps are
        field-of-view sized and built now; the row offsets are lazy, per frame)."""
        pattern = readout.pattern
        truth = {}
        if pattern.prnu > 0:
            truth["sensor_gain"] = (("y", "x"), gain_map(pattern))
        if pattern.has_offset:
            truth["sensor_offset_adu"] = (("y", "x"), offset_adu(pattern, readout.gain_adu_per_e))
        if pattern.hot_pixel_fraction > 0:
            truth["hot_pixels"] = (("y", "x"), hot_pixel_mask(pattern))
        if pattern.row_noise_e > 0:
            rows = scene.frame_map(
                ("sensor", "row_offset_e"),
                row_offset_frames,
                (pattern.shape[0],),
                np.dtype(np.float64),
                constants=[constant(pattern, "pattern")],
            )
            truth["row_offset_e"] = (("frame", "y"), rows)
        return truth

    def detectable(self, scene: Scene):
        """Lazy per-cell flag: does the cell's brightest transient clear the noise floor?

        The transient is max C − min C over the recording and the baseline min C; both
        become photo-electrons at the cell's brightest pixel through the peak of its
        observed footprint (1 for sharp cells without optics), the scope's light fields
        at its rest position, vessel shading, the exposure and the quantum efficiency.
        Blur alone does not disqualify a cell: a bright cell outside the depth of field
        can still be detectable.
        """
        acq = scene.spec.acquisition
        trace_range = calcium_range(scene)
        if trace_range is None:
            return np.zeros(scene.n_cells, bool)
        centers = scene.cells["centers_um"]
        gain = scene.context.photon_field_at(centers) * (
            self.photons_per_unit * acq.image_sensor.quantum_efficiency
        )
        for factor in ("observed_peak", "vessel_transmission"):
            if factor in scene.cells:
                gain = gain * scene.cells[factor]
        low, high = trace_range
        return da.map_blocks(
            is_detectable,
            high - low,
            low,
            da.asarray(gain),
            temporal_noise_e(acq),
            dtype=bool,
        )


def count_dtype(bit_depth: int) -> np.dtype:
    """uint8 up to 8 bits, uint16 up to 16."""
    return np.dtype(np.uint8 if bit_depth <= 8 else np.uint16)


@dataclass(frozen=True)
class Readout:
    """Everything the digitizing kernel needs (small; stored once in the graph)."""

    seed: int
    photons_per_unit: float
    quantum_efficiency: float
    read_noise_e: float
    gain_adu_per_e: float
    max_count: int
    dtype: str
    shot_noise: str
    noise: bool = True
    #: The detector's imperfections (none when absent: the ideal sensor).
    pattern: Pattern | None = None


def expected(movie: da.Array, readout: Readout, name: str, frame_chunks) -> da.Array:
    """Lazy mean counts (float32) of a (frame, y, x) intensity movie: :func:`mean_counts`."""
    return map_ranges(
        name,
        mean_count_frames,
        frame_chunks,
        movie.shape[1:],
        np.dtype(np.float32),
        inputs=[(movie, 0)],
        constants=[constant(readout, "readout")],
    )


def mean_count_frames(start: int, stop: int, intensity: np.ndarray, readout: Readout) -> np.ndarray:
    """Mean counts of frames [start, stop) (no random draws, so the frame index is unused)."""
    out = np.empty(intensity.shape, np.float32)
    for k in range(stop - start):
        out[k] = mean_counts(intensity[k], readout)
    return out


def mean_counts(intensity: np.ndarray, readout: Readout) -> np.ndarray:
    """The mean ADC count each pixel reads at this intensity, over the sensor's noise.

    The fixed pattern is part of the mean: each pixel's electrons have mean
    ``μₑ = photons·QE·gain_map + dark_e + dark_offset_e`` (PRNU, dark current with the hot
    pixels, DSNU) and variance ``σₑ² = photons·QE·gain_map + dark_e + read² + row²``
    (shot noise of light and dark current, read and row noise); the count is
    ``clip(floor(X), 0, M)`` with ``X = gain_adu_per_e·e + black_level_adu``. With ``X``
    normal (the shot noise's normal limit), ``E[count] = Σ_{k=1..M} P(X ≥ k)``, summed in
    closed form as ``σ·[G((μ − ½)/σ) − G((μ − M − ½)/σ)]``, ``G(u) = u·Φ(u) + φ(u)``.
    Away from the ADC's ends that is ``μ − ½`` (the floor takes half a count on average);
    near 0 and near M it bends to the clipped mean. Exact to well under 0.01 count once
    the noise exceeds half a count, which read noise alone ensures for any usual gain; a
    sensor with no noise at all reads ``clip(floor(μ), 0, M)``.
    """
    from scipy.special import ndtr

    from ..engine import portable_math as pm

    electrons = np.maximum(intensity.astype(np.float64) * readout.photons_per_unit, 0.0)
    electrons *= readout.quantum_efficiency
    pattern = readout.pattern
    gain, dark, offset = (None, None, None) if pattern is None else fixed_maps(pattern)
    if gain is not None:
        electrons *= gain
    if dark is not None:
        electrons += dark
    row = pattern.row_noise_e if pattern is not None else 0.0
    variance = electrons + readout.read_noise_e**2 + row**2  # Poisson: variance = mean
    if offset is not None:
        electrons = electrons + offset
    black = pattern.black_level_adu if pattern is not None else 0.0
    mean = electrons * readout.gain_adu_per_e + black
    sigma = np.sqrt(variance) * readout.gain_adu_per_e
    top = readout.max_count
    noiseless = sigma == 0
    safe = np.where(noiseless, 1.0, sigma)

    def g(u):  # the antiderivative of Φ
        return u * ndtr(u) + pm.exp(-0.5 * u * u) / np.sqrt(2 * np.pi)

    counts = safe * (g((mean - 0.5) / safe) - g((mean - top - 0.5) / safe))
    if noiseless.any():
        counts[noiseless] = np.clip(np.floor(mean[noiseless]), 0, top)
    return counts


def digitize_frames(start: int, stop: int, intensity: np.ndarray, readout: Readout) -> np.ndarray:
    """Counts of frames [start, stop): per frame, noise from streams keyed by its index."""
    if len(intensity) != stop - start:
        raise ValueError(f"{len(intensity)} frames of intensity for frames [{start}, {stop})")
    out = np.empty(intensity.shape, readout.dtype)
    for k, frame in enumerate(range(start, stop)):
        out[k] = digitize_frame(intensity[k], readout, frame)
    return out


def digitize_frame(intensity: np.ndarray, readout: Readout, frame: int) -> np.ndarray:
    """One frame: photons → electrons (with noise unless disabled) → clipped ADC counts.

    Compiled (two fused passes, no frame temporaries) when numba is installed, else numpy;
    both run the same float64 operations in the same order, so the bytes are identical.
    """
    if _readout_kernels() is None:
        return _digitize_frame_numpy(intensity, readout, frame)
    return _digitize_frame_compiled(intensity, readout, frame)


def _digitize_frame_compiled(intensity: np.ndarray, readout: Readout, frame: int) -> np.ndarray:
    kernels = _readout_kernels()
    pattern = readout.pattern
    gain, dark, offset = (None, None, None) if pattern is None else fixed_maps(pattern)
    flat = np.ascontiguousarray(intensity).reshape(-1)
    expected = np.empty(flat.size)
    kernels.expected_electrons(
        flat,
        float(readout.photons_per_unit),
        float(readout.quantum_efficiency),
        _flat_or_empty(gain),
        _flat_or_empty(dark),
        expected,
    )
    normal = _NO_MAP
    if not readout.noise:
        mode, electrons = kernels.NOISELESS, expected
    elif readout.shot_noise == "poisson":
        mode = kernels.POISSON_PLUS_READ
        electrons = poisson(expected, stream(readout.seed, KIND, "shot", frame))
        normal = standard_normal(flat.size, stream(readout.seed, KIND, "read", frame))
    else:
        mode, electrons = kernels.GAUSSIAN, expected
        normal = standard_normal(flat.size, stream(readout.seed, KIND, "shot+read", frame))
    rows = _NO_MAP
    if readout.noise and pattern is not None and pattern.row_noise_e > 0:
        rows = np.ascontiguousarray(row_offsets(pattern, frame), np.float64)
    black = 0.0 if pattern is None else float(pattern.black_level_adu)
    out = np.empty(flat.size, readout.dtype)
    kernels.to_counts(
        electrons,
        normal,
        mode,
        float(readout.read_noise_e),
        _flat_or_empty(offset),
        rows,
        intensity.shape[-1],
        float(readout.gain_adu_per_e),
        black,
        float(readout.max_count),
        out,
    )
    return out.reshape(intensity.shape)


_NO_MAP = np.zeros(0)


def _flat_or_empty(field: np.ndarray | None) -> np.ndarray:
    return _NO_MAP if field is None else np.ascontiguousarray(field, np.float64).reshape(-1)


def _readout_kernels():
    """The compiled readout module, or None for numpy (:mod:`minisim.engine.backend`)."""
    if not compiled_kernels():
        return None
    from . import _sensor_numba

    return _sensor_numba


def _digitize_frame_numpy(intensity: np.ndarray, readout: Readout, frame: int) -> np.ndarray:
    # In place where possible (same operations in the same order): this runs per pixel
    # of every frame, next to the noise draws themselves.
    expected = intensity.astype(np.float64)
    expected *= readout.photons_per_unit
    np.maximum(expected, 0.0, out=expected)  # photons
    expected *= readout.quantum_efficiency
    pattern = readout.pattern
    gain, dark, offset = (None, None, None) if pattern is None else fixed_maps(pattern)
    if gain is not None:  # photo-response non-uniformity
        expected *= gain
    if dark is not None:  # dark electrons are shot-noise limited like photo-electrons
        expected += dark
    if not readout.noise:
        electrons = expected
    elif readout.shot_noise == "poisson":
        # Exact Poisson, same bytes on every CPU (numpy's Generator.poisson is 3–5× slower
        # and decides with the C library's log, whose last bits vary between CPUs).
        electrons = poisson(expected, stream(readout.seed, KIND, "shot", frame))
        read = standard_normal(expected.size, stream(readout.seed, KIND, "read", frame))
        read = read.reshape(expected.shape)
        read *= readout.read_noise_e
        electrons += read
    else:
        normal = standard_normal(expected.size, stream(readout.seed, KIND, "shot+read", frame))
        normal = normal.reshape(expected.shape)
        electrons = (
            expected + np.sqrt(expected + readout.read_noise_e * readout.read_noise_e) * normal
        )
    if offset is not None:  # dark-signal non-uniformity: a fixed offset per pixel
        electrons += offset
    if readout.noise and pattern is not None and pattern.row_noise_e > 0:
        electrons += row_offsets(pattern, frame)[:, None]
    electrons *= readout.gain_adu_per_e
    if pattern is not None and pattern.black_level_adu > 0:  # the ADC's offset
        electrons += pattern.black_level_adu
    np.floor(electrons, out=electrons)
    np.clip(electrons, 0, readout.max_count, out=electrons)
    return electrons.astype(readout.dtype)
