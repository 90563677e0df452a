"""The only door from :mod:`minisim.explore` into the engine and the step modules.

Everything the notebooks and the studio need from the internals goes through the thin
wrappers below, so a refactor of ``minisim.steps`` or ``minisim.engine`` re-points this
one file and nothing else. Notebooks never import from here: they use the public helpers
of :mod:`minisim.explore`.
"""

from __future__ import annotations

import numpy as np

from ..steps.bleaching import bleaching_floor as _bleaching_floor
from ..steps.bleaching import dark_recovery as _dark_recovery
from ..steps.cell_activity import calcium_kernel as _calcium_kernel
from ..steps.cell_activity import kernel_peak as _kernel_peak
from ..steps.cell_activity import kernel_timing as _kernel_timing
from ..steps.detection import DETECT_SNR_THRESHOLD as _THRESHOLD
from ..steps.detection import detection_snr as _detection_snr
from ..steps.sensor import digitize_frame as _digitize_frame

#: The SNR a cell's brightest transient must reach to count as detectable.
DETECT_SNR_THRESHOLD = _THRESHOLD


def calcium_kernel(tau_rise_s: float, tau_decay_s: float, fps: float) -> np.ndarray:
    """Peak-normalized calcium kernel sampled at ``fps`` (five decay times long)."""
    return _calcium_kernel(tau_rise_s, tau_decay_s, fps)


def kernel_peak(tau_rise_s: float, tau_decay_s: float) -> tuple[float, float]:
    """(time, value) of the maximum of ``exp(−t/τd) − exp(−t/τr)``."""
    return _kernel_peak(tau_rise_s, tau_decay_s)


def kernel_timing(tau_rise_s: float, tau_decay_s: float) -> tuple[float, float]:
    """(time to peak, full width at half maximum) of the kernel, s."""
    return _kernel_timing(tau_rise_s, tau_decay_s)


def bleaching_floor(rate: float, intensity: float, emission: float, turnover_tau: float) -> float:
    """Fixed point of the bleaching pool under constant drive."""
    return _bleaching_floor(rate, intensity, emission, turnover_tau)


def dark_recovery(pool: float, time, turnover_tau: float):
    """Recovery of the pool in the dark."""
    return _dark_recovery(pool, time, turnover_tau)


def detection_snr(peak, base, gain, read_noise_e):
    """SNR of a transient (trace units → photo-electrons through ``gain``)."""
    return _detection_snr(peak, base, gain, read_noise_e)


def digitize_one_frame(
    intensity: np.ndarray, sensor_step, acquisition, seed: int, frame: int, noise: bool
) -> np.ndarray:
    """The sensor step's digitization of one frame (same keyed noise as ``simulate``)."""
    readout = sensor_step.readout(acquisition, seed, noise=noise)
    return _digitize_frame(np.asarray(intensity), readout, int(frame))


def static_field(step, acquisition) -> np.ndarray:
    """The (y, x) field of a static-field step (illumination, vignette, leakage)."""
    return np.asarray(step.field(acquisition), float)
