"""Optics: each cell's footprint blurred and dimmed by its depth, and the focal plane.

Diffraction, scatter and defocus blur add in quadrature into one Gaussian σ per cell;
scatter attenuation and the NA² collection loss scale the light. The observed footprint
is the planted one convolved with that (sum-normalized) Gaussian, times
``attenuation·NA²``; light blurred past the simulated tissue is lost.

Wide footprints are sampled on coarser node grids (see
:mod:`minisim.engine.multiscale`): a cell with blur σ ≥ 12 px is stored every ``f`` px
with ``f`` the largest power of two ≤ σ/6, and rendered by bilinear interpolation. For a
Gaussian-shaped blob the interpolation error is at most ``(f²/8)·(|∂²/∂y²| + |∂²/∂x²|)``
≤ ``f²/(4σ²)·peak`` ≤ 1/144 (0.7%) of the cell's own peak; the test suite checks < 1%
against an exact full-resolution convolution. The ground truth ``A_observed`` is the
interpolated footprint itself, so the movie and its ground truth agree exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from ..acquisition import Acquisition
from ..engine import Footprints, Scene
from ..engine import portable_math as pm
from ..engine.multiscale import MultiScaleFootprints, node_count
from .base import StepSpec
from .detection import (
    DETECT_SNR_THRESHOLD,
    calcium_range,
    detection_snr,
    temporal_noise_e,
)

KIND = "optics"
#: Gaussian kernels are truncated at this many σ (and renormalized to sum 1).
TRUNCATE_SIGMAS = 4.0
#: Blur widths from which footprints are stored on a coarser grid.
COARSE_FROM_SIGMA_PX = 12.0
#: Node spacing is the largest power of two ≤ σ / this.
NODES_PER_SIGMA = 6.0
#: Candidate focal planes scanned by the yield-maximizing auto focus.
FOCUS_SCAN_N = 96


class CellOptics(StepSpec):
    """Depth-dependent blur and dimming of every cell, at the resolved focal plane.

    No fields: the blur and light losses follow from each cell's depth and the
    ``Optics``/``Tissue`` constants of the acquisition. With
    ``focal_depth_in_tissue_um="auto"`` the focal plane is the median effective cell
    depth (the plane of least total defocus); with a sensor step it is the plane that
    makes the most cells detectable.
    """

    kind: Literal["optics"] = KIND
    order: ClassVar[float] = 40
    needs: ClassVar[tuple[str, ...]] = ("centers_um", "soma_radius_um", "footprints.planted")
    reads: ClassVar[tuple[str, ...]] = ("calcium_extremes",)
    provides: ClassVar[tuple[str, ...]] = (
        "observed_sigma_px",
        "observed_gain",
        "optical_brightness",
        "observed_peak",
        "in_focus",
        "footprints.observed",
        "focal_depth_um",
    )

    def build(self, scene: Scene) -> Scene:
        acq: Acquisition = scene.context.acquisition
        centers = scene.cells["centers_um"]
        planted = scene.footprints["planted"]
        photons_per_unit = scene.context.photons_per_unit  # None without a sensor
        trace_range = calcium_range(scene)
        if (
            acq.focal_depth_in_tissue_um == "auto"
            and photons_per_unit is not None
            and trace_range is not None
            and len(centers)
        ):
            # With a sensor, "auto" focuses where the most cells are detectable, which
            # depends on every trace's range: a reduction over all frames, so lazy.
            low, high = trace_range
            focal = scene.cell_call(
                ("optics", "focus"), yield_maximizing_focal_plane, acq, centers,
                scene.cells["soma_radius_um"], high - low, low, photons_per_unit,
                scene.context.photon_field_at(centers),
            )  # fmt: skip
        else:
            focal = resolve_focal_plane(
                acq.focal_depth_in_tissue_um, effective_depth_um(acq, centers)
            )
        result = scene.cell_call(("optics", "footprints"), optics_at_focus, acq, centers,
                                 planted, focal)  # fmt: skip
        cells = {
            name: scene.cell_array(
                ("optics", name), scene.cell_call(("optics", name, "value"), getattr, result, name),
                (len(centers),), dtype,
            )
            for name, dtype in OpticsResult.PER_CELL.items()
        }  # fmt: skip
        focal_plane = scene.cell_array(
            ("optics", "focal"), scene.cell_call(("optics", "focal", "value"), float, focal), (),
            float,
        )  # fmt: skip
        footprints = scene.cell_call(("optics", "observed"), getattr, result, "footprints")
        return scene.evolve(cells=cells, footprints={"observed": footprints}, focal=focal_plane)


@dataclass(frozen=True, eq=False)
class OpticsResult:
    """Per-cell optics at one focal plane, and the observed footprints."""

    #: Per-cell ground truth and its dtype.
    PER_CELL: ClassVar[dict[str, str]] = {
        "observed_sigma_px": "float64",
        "observed_gain": "float64",
        "optical_brightness": "float64",
        "observed_peak": "float64",
        "in_focus": "bool",
    }

    focal_depth_um: float
    observed_sigma_px: np.ndarray
    observed_gain: np.ndarray
    optical_brightness: np.ndarray
    observed_peak: np.ndarray
    in_focus: np.ndarray
    footprints: MultiScaleFootprints

    def per_cell(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self.PER_CELL}


def optics_at_focus(
    acq: Acquisition, centers: np.ndarray, planted: Footprints, focal: float
) -> OpticsResult:
    """Blur, dimming and in-focus flags of every cell with the central focus at ``focal``.

    Field curvature makes an off-axis cell's own focal plane shallower by the curvature
    shift at its field radius.
    """
    cell_focal = focal - acq.optics.curvature_shift_um(pm.hypot(centers[:, 1], centers[:, 2]))
    sigma_px, brightness = acq.cell_optics(centers[:, 0], cell_focal)
    gain = acq.tissue.attenuation(centers[:, 0]) * acq.optics.collection_efficiency
    in_focus = np.abs(centers[:, 0] - cell_focal) <= acq.optics.resolved_depth_of_field_um
    footprints = observed_footprints(planted, sigma_px, gain)
    return OpticsResult(
        focal_depth_um=float(focal),
        observed_sigma_px=np.asarray(sigma_px, float),
        observed_gain=np.asarray(gain, float),
        optical_brightness=np.asarray(brightness, float),
        observed_peak=footprints.peaks(),
        in_focus=np.asarray(in_focus, bool),
        footprints=footprints,
    )


def effective_depth_um(acq: Acquisition, centers_um: np.ndarray) -> np.ndarray:
    """Depth each cell would need for the central focal plane to focus on it.

    With field curvature an off-axis cell focuses shallower, which is the same as the
    cell sitting deeper by the curvature shift at its field radius.
    """
    radius = pm.hypot(centers_um[:, 1], centers_um[:, 2])
    return centers_um[:, 0] + acq.optics.curvature_shift_um(radius)


def resolve_focal_plane(value, effective_depths: np.ndarray) -> float:
    """A numeric focal depth as given; ``"auto"``: the median effective depth (0 if no cells).

    The median minimizes the total |defocus| over the cells; an even count averages the
    middle two.
    """
    if value != "auto":
        return float(value)
    if len(effective_depths) == 0:
        return 0.0
    return float(np.median(effective_depths))


def yield_maximizing_focal_plane(
    acq: Acquisition,
    centers_um: np.ndarray,
    soma_radius_um: np.ndarray,
    trace_peak: np.ndarray,
    trace_base: np.ndarray,
    photons_per_unit: float,
    photon_field: np.ndarray | None = None,
) -> float:
    """The focal plane that makes the most cells detectable by the sensor.

    Scans :data:`FOCUS_SCAN_N` planes over the cells' effective depths. At each, a cell's
    brightest pixel is estimated in closed form as a disk of its soma radius ``a`` blurred
    by its total σ, whose centre keeps ``1 − exp(−a²/2σ²)`` of the light, times
    attenuation·NA², the scope's photon field and ``photons_per_unit``·QE; the cell counts
    if its detection SNR reaches :data:`DETECT_SNR_THRESHOLD` against the same noise floor
    as the sensor's ``detectable`` flag (:func:`~minisim.steps.detection.temporal_noise_e`).
    Ties go to the larger total detectable signal, then to the shallowest plane.
    """
    if len(centers_um) == 0:
        return 0.0
    depth = centers_um[:, 0]
    effective = effective_depth_um(acq, centers_um)
    optics, sensor = acq.optics, acq.image_sensor
    scatter = acq.tissue.scatter_sigma_um(depth)
    sigma0_sq = optics.diffraction_sigma_um * optics.diffraction_sigma_um + scatter * scatter
    field = np.ones(len(depth)) if photon_field is None else np.asarray(photon_field, float)
    base_gain = (
        acq.tissue.attenuation(depth) * optics.collection_efficiency * field * photons_per_unit
        * sensor.quantum_efficiency
    )  # fmt: skip
    radius_sq = np.square(np.asarray(soma_radius_um, float))
    noise_e = temporal_noise_e(acq)  # read, dark shot and row noise, as the sensor's flag
    candidates = np.linspace(effective.min(), effective.max(), FOCUS_SCAN_N)
    best, best_score = float(candidates[0]), (-1, -np.inf)
    for focal in candidates:
        sigma_sq = sigma0_sq + np.square(optics.na * (effective - focal))
        gain = base_gain * -pm.expm1(-radius_sq / (2 * sigma_sq))
        detectable = detection_snr(trace_peak, trace_base, gain, noise_e) >= DETECT_SNR_THRESHOLD
        score = (int(detectable.sum()), float(np.sum((trace_peak * gain)[detectable])))
        if score > best_score:
            best, best_score = float(focal), score
    return best


def gaussian_taps(sigma_px: float) -> np.ndarray:
    """Sum-normalized Gaussian sampled at integer offsets −R … R, R = ceil(4σ)."""
    radius = max(int(math.ceil(TRUNCATE_SIGMAS * sigma_px)), 0)
    offsets = np.arange(-radius, radius + 1)
    if sigma_px <= 0:
        return (offsets == 0).astype(float)
    taps = pm.exp(-0.5 * np.square(offsets / sigma_px))
    return taps / taps.sum()


def node_factor(sigma_px: float) -> int:
    """Node spacing for a footprint of blur σ: 1 below 12 px, else a power of two ≤ σ/6."""
    if not sigma_px >= COARSE_FROM_SIGMA_PX:
        return 1
    return 2 ** pm.floor_log2(sigma_px / NODES_PER_SIGMA)


def blurred_patch(offset, patch, sigma_px: float, gain: float, canvas_shape, factor: int = 1):
    """The planted patch ⊛ Gaussian(σ) × gain, sampled every ``factor`` px on the canvas.

    Returns ``((node_row, node_col), values)`` in node units; with ``factor=1`` nodes
    are pixels. The convolution is separable: rows and columns each multiply by a banded
    matrix of Gaussian taps, restricted to the nodes that the blurred support touches.
    """
    taps = gaussian_taps(sigma_px)
    radius = len(taps) // 2
    row, col = offset
    h, w = patch.shape
    if h == 0:
        return (0, 0), np.zeros((0, 0), np.float32)

    def axis_matrix(start, length, canvas_length):
        n_nodes = node_count(canvas_length, factor)
        first = max(-(-(start - radius) // factor), 0)
        last = min((start + length - 1 + radius) // factor, n_nodes - 1)
        nodes = np.arange(first, last + 1) * factor
        d = nodes[:, None] - (start + np.arange(length))[None, :]
        inside = np.abs(d) <= radius
        return first, np.where(inside, taps[np.clip(d + radius, 0, 2 * radius)], 0.0)

    r_first, rows = axis_matrix(row, h, canvas_shape[0])
    c_first, cols = axis_matrix(col, w, canvas_shape[1])
    # Not ``@``: BLAS kernels differ between CPUs in their summation order and FMA use.
    values = gain * pm.matmul(pm.matmul(rows, patch.astype(float)), cols.T)
    return (r_first, c_first), values.astype(np.float32)


def observed_footprints(
    planted: Footprints, sigma_px: np.ndarray, gain: np.ndarray
) -> MultiScaleFootprints:
    """Every cell's observed footprint, each at the node spacing its blur allows."""
    patches = []
    for i, (offset, patch) in enumerate(planted.patches()):
        factor = node_factor(float(sigma_px[i]))
        node_offset, values = blurred_patch(offset, patch, float(sigma_px[i]), float(gain[i]),
                                            planted.canvas_shape, factor)  # fmt: skip
        patches.append((factor, node_offset, values))
    return MultiScaleFootprints.from_levels(patches, planted.canvas_shape)
