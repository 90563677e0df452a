"""Small physics helpers for the notebooks and the studio: each one effect, computed alone.

They answer "what does this knob do?" without simulating a whole recording: the
activity level presets and the kernel-from-timing conversion, blur and brightness
against depth, the motion trajectory alone, the vessel mask alone, bleaching curves,
one-frame digitization and the light-field profiles.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import xarray as xr
from scipy.optimize import brentq

from ..acquisition import Acquisition
from ..errors import SpecWarning
from ..simulate import simulate
from ..spec import Spec
from ..steps import BrainMotion, CellActivity, PlaceNeurons, Vasculature
from . import _internals

__all__ = [
    "ACTIVITY_LEVELS",
    "DETECT_SNR_THRESHOLD",
    "activity_at_level",
    "activity_preset",
    "bleaching_curves",
    "blur_vs_depth",
    "digitize_frame",
    "field_profiles",
    "kernel_curve",
    "kernel_timing",
    "motion_trajectory",
    "snr_vs_radius",
    "taus_from_timing",
    "vessel_mask",
]

DETECT_SNR_THRESHOLD = _internals.DETECT_SNR_THRESHOLD

#: Activity gate and spike rates at three levels (0 sparse, 0.5 moderate = the
#: ``CellActivity`` defaults, 1 dense): (p_quiescent_to_active, p_active_to_quiescent,
#: active_rate_hz, quiescent_rate_hz).
ACTIVITY_LEVELS = {
    0.0: (0.002, 0.4, 90.0, 0.3),
    0.5: (0.005, 0.3, 150.0, 0.6),
    1.0: (0.01, 0.2, 210.0, 1.5),
}
_ACTIVITY_FIELDS = (
    "p_quiescent_to_active",
    "p_active_to_quiescent",
    "active_rate_hz",
    "quiescent_rate_hz",
)


def activity_preset(level: float) -> dict[str, float]:
    """Activity gate and spike rates for a level from 0 (sparse) to 1 (dense).

    Linear between the three :data:`ACTIVITY_LEVELS`; levels outside [0, 1] are clamped.
    0.5 gives the ``CellActivity`` defaults.

    Returns
    -------
    dict
        ``CellActivity`` fields: ``p_quiescent_to_active``, ``p_active_to_quiescent``,
        ``active_rate_hz``, ``quiescent_rate_hz``.
    """
    a = min(max(float(level), 0.0), 1.0)
    knots = sorted(ACTIVITY_LEVELS)
    table = np.array([ACTIVITY_LEVELS[k] for k in knots])
    return {
        name: float(np.interp(a, knots, table[:, i])) for i, name in enumerate(_ACTIVITY_FIELDS)
    }


def activity_at_level(level: float, **fields) -> CellActivity:
    """A ``CellActivity`` step at an activity level (see :func:`activity_preset`).

    Other ``CellActivity`` fields (``tau_rise_s``, ``brightness_cv``, …) pass through.
    """
    return CellActivity(**(activity_preset(level) | fields))


def kernel_timing(tau_rise_s: float, tau_decay_s: float) -> tuple[float, float]:
    """(time to peak, full width at half maximum) of the calcium kernel, in s."""
    return _internals.kernel_timing(tau_rise_s, tau_decay_s)


def _unit_timing(ratio: float) -> tuple[float, float]:
    # Kernel timing with τd = 1 (it scales with τd at a fixed ratio τr/τd).
    return _internals.kernel_timing(ratio, 1.0)


_RATIO_BOUNDS = (1e-4, 1 - 1e-6)


def taus_from_timing(t_peak_s: float, fwhm_s: float) -> tuple[float, float]:
    """The kernel's (tau_rise_s, tau_decay_s) from its time to peak and half-maximum width.

    The shape depends only on r = τr/τd, whose peak-time/width ratio grows from 0 to about
    0.41; a ratio outside that range is clamped to the nearest achievable kernel. Then
    τd = t_peak / u_peak(r) with u_peak = r·ln r / (r − 1), and τr = r·τd.
    """
    if t_peak_s <= 0 or fwhm_s <= 0:
        raise ValueError(f"t_peak_s={t_peak_s:g}, fwhm_s={fwhm_s:g}: both must be > 0 (seconds)")
    target = t_peak_s / fwhm_s

    def mismatch(r):
        t_peak, width = _unit_timing(r)
        return t_peak / width - target

    low, high = _RATIO_BOUNDS
    if mismatch(low) >= 0:
        r = low
    elif mismatch(high) <= 0:
        r = high
    else:
        r = brentq(mismatch, low, high, xtol=1e-12)
    u_peak = _unit_timing(r)[0]
    tau_decay = t_peak_s / u_peak
    return r * tau_decay, tau_decay


def kernel_curve(
    tau_rise_s: float, tau_decay_s: float, fps: float = 1000.0
) -> tuple[np.ndarray, np.ndarray]:
    """(t in s, kernel) of one spike's calcium transient, peak 1, sampled at ``fps``."""
    k = _internals.calcium_kernel(tau_rise_s, tau_decay_s, fps)
    return np.arange(k.size) / fps, k


def blur_vs_depth(acquisition: Acquisition, depths_um, focal_um: float) -> dict[str, np.ndarray]:
    """Per-depth blur components and brightness of an on-axis cell.

    Diffraction and scatter (a ramp in depth) and defocus (a "V" around the focal plane)
    add in quadrature; brightness is the peak of a point source relative to an unblurred
    one at the surface (scatter attenuation × NA² collection × blur dilution).

    Returns
    -------
    dict of arrays (µm, except ``brightness``)
        ``depth_um``, ``diffraction_um``, ``scatter_um``, ``defocus_um``, ``total_um``,
        ``total_px``, ``brightness``.
    """
    z = np.asarray(depths_um, float)
    optics, tissue = acquisition.optics, acquisition.tissue
    total_px, brightness = acquisition.cell_optics(z, focal_um)
    return {
        "depth_um": z,
        "diffraction_um": np.full_like(z, optics.diffraction_sigma_um),
        "scatter_um": tissue.scatter_sigma_um(z),
        "defocus_um": optics.defocus_sigma_um(z, focal_um),
        "total_um": total_px * acquisition.pixel_size_um,
        "total_px": total_px,
        "brightness": brightness,
    }


def bleaching_curves(
    bleaching,
    *,
    emission: float = 1.0,
    session_s: float = 1800.0,
    gap_s: float = 86400.0,
    n: int = 200,
) -> dict[str, np.ndarray | float]:
    """The bleaching pool of a cell emitting at a constant level: fade, then recovery.

    Within a session the pool obeys dB/dt = (1 − B)/τ − q·I·e·B, so it fades
    exponentially to the floor ``k_t/(k_t + q·I·e)`` at the rate ``1/τ + q·I·e``; between
    sessions (dark) it recovers as ``1 − (1 − B0)·exp(−t/τ)``.

    Parameters
    ----------
    bleaching : Bleaching
        The step (susceptibility q, turnover τ, excitation I).
    emission : float
        The cell's steady emission in trace units (f0 ≈ 1 at rest; tens during bursts).
    session_s, gap_s : float
        Length of the imaging session and of the dark gap after it, s.

    Returns
    -------
    dict
        ``t_session_s``, ``fade`` (pool during the session), ``t_gap_s``, ``recovery``
        (pool during the gap), ``floor``.
    """
    q = bleaching.bleach_susceptibility
    tau = bleaching.turnover_tau_s
    drive = bleaching.excitation_intensity
    floor = _internals.bleaching_floor(q, drive, emission, tau)
    rate = 1.0 / tau + q * drive * emission
    t_session = np.linspace(0.0, session_s, n)
    fade = floor + (1.0 - floor) * np.exp(-rate * t_session)
    t_gap = np.linspace(0.0, gap_s, n)
    recovery = np.asarray(_internals.dark_recovery(float(fade[-1]), t_gap, tau), float)
    return {
        "t_session_s": t_session,
        "fade": fade,
        "t_gap_s": t_gap,
        "recovery": recovery,
        "floor": float(floor),
    }


def _quiet_simulate(spec: Spec):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpecWarning)
        return simulate(spec)


def motion_trajectory(motion: BrainMotion, acquisition: Acquisition, seed: int) -> xr.DataArray:
    """The (frame, shift_axis) brain motion alone, in pixels, for a spec's acquisition and seed.

    Identical to ``rec.ground_truth.shifts`` of any spec with this motion, acquisition
    and seed: the trajectory's random streams are keyed by the seed, not by other steps.
    """
    spec = Spec(acquisition=acquisition, seed=seed, steps=[motion])
    return _quiet_simulate(spec).ground_truth.shifts.compute()


def vessel_mask(
    vasculature: Vasculature, acquisition: Acquisition, seed: int, focal_depth_um: float
) -> xr.DataArray:
    """The (y, x) vessel transmission of the field of view alone (1 = no vessel).

    ``focal_depth_um`` sets how much each vessel layer is defocused.
    """
    acq = acquisition.model_copy(update={"focal_depth_in_tissue_um": float(focal_depth_um)})
    spec = Spec(acquisition=acq, seed=seed, steps=[PlaceNeurons(positions_um=()), vasculature])
    ds = _quiet_simulate(spec).dataset
    if "vasculature_mask" not in ds.coords:
        return xr.DataArray(np.ones(acq.fov_shape), dims=("y", "x"), name="vasculature_mask")
    return ds["vasculature_mask"].compute()


def digitize_frame(intensity, spec: Spec, frame: int = 0, *, noise: bool = True) -> np.ndarray:
    """Integer counts of one intensity frame through the spec's sensor.

    With ``noise=True`` the shot and read noise are the very draws ``simulate`` makes for
    that frame index; ``noise=False`` reads the frame out without random draws (the floor
    of each pixel's mean electrons times the gain); the mean count over the noise is
    :meth:`minisim.Recording.expected_counts`.
    """
    sensor = spec.step("sensor")
    if sensor is None:
        raise ValueError("digitize_frame: the spec has no sensor step; add Sensor() to it")
    return _internals.digitize_one_frame(
        np.asarray(intensity), sensor, spec.acquisition, spec.seed, frame, noise
    )


def field_profiles(spec: Spec) -> dict[str, np.ndarray]:
    """The spec's static light fields on the field of view, by kind.

    Keys among ``illumination_profile``, ``vignette`` (multiplicative) and ``leakage``
    (additive, intensity units); absent steps are absent.
    """
    kinds = ("illumination_profile", "vignette", "leakage")
    return {
        step.kind: _internals.static_field(step, spec.acquisition)
        for step in spec.steps
        if step.kind in kinds
    }


def snr_vs_radius(
    spec: Spec, *, transient: float = 1.0, baseline: float = 1.0, n: int = 100
) -> dict[str, np.ndarray]:
    """Detection SNR of an in-focus, on-surface point cell against its distance from the axis.

    The cell's ``transient`` and ``baseline`` (trace units: one spike's peak is 1, rest
    fluorescence f0 ≈ 1) become photo-electrons at its brightest pixel through the
    exposure, the quantum efficiency, NA² collection and the illumination × vignette
    field along the field's diagonal. Compare with :data:`DETECT_SNR_THRESHOLD`.

    Returns
    -------
    dict
        ``radius_um`` and ``snr``.
    """
    acq = spec.acquisition
    sensor = spec.step("sensor")
    if sensor is None:
        raise ValueError("snr_vs_radius: the spec has no sensor step; add Sensor() to it")
    fields = field_profiles(spec)
    h, w = acq.fov_shape
    diagonal = np.ones(min(h, w))
    for kind in ("illumination_profile", "vignette"):
        if kind in fields:
            field = fields[kind]
            k = np.arange(diagonal.size)
            diagonal = diagonal * field[(k * (h - 1)) // max(diagonal.size - 1, 1),
                                        (k * (w - 1)) // max(diagonal.size - 1, 1)]  # fmt: skip
    # From the centre out to the corner: the second half of the diagonal.
    half = diagonal[diagonal.size // 2 :]
    radius = np.linspace(0.0, math.hypot(*acq.fov_um) / 2, half.size)
    gain = half * sensor.photons_per_unit * acq.image_sensor.quantum_efficiency
    gain = gain * acq.optics.collection_efficiency
    snr = _internals.detection_snr(transient, baseline, gain, acq.image_sensor.read_noise_e)
    idx = np.linspace(0, half.size - 1, min(n, half.size)).round().astype(int)
    return {"radius_um": radius[idx], "snr": np.asarray(snr)[idx]}
