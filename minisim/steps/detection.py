"""What the sensor can see: the detection SNR of a cell's transient, and light fields at cells.

Shared by the auto focus (which maximizes the number of detectable cells) and the sensor
step (which records each cell's ``detectable`` flag).
"""

from __future__ import annotations

import numpy as np

from ..acquisition import Acquisition

#: A cell is detectable when its transient clears the noise floor by this SNR (a stable
#: contract: changing it changes every benchmark's denominator).
DETECT_SNR_THRESHOLD = 3.0


def detection_snr(peak, base, gain, read_noise_e):
    """SNR of a transient: ``peak·g / sqrt(max(base, 0)·g + read²)``.

    ``peak`` and ``base`` are in trace units, ``gain`` converts them to photo-electrons
    per pixel at the cell's brightest pixel, ``read_noise_e`` is the read noise (e⁻ RMS).
    Infinite when the denominator is 0 and the signal positive; 0 when both are 0.
    """
    peak, base, gain = np.broadcast_arrays(*(np.asarray(v, float) for v in (peak, base, gain)))
    signal = peak * gain
    noise = np.sqrt(np.maximum(base, 0) * gain + read_noise_e * read_noise_e)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(
            noise > 0, signal / np.where(noise > 0, noise, 1), np.where(signal > 0, np.inf, 0.0)
        )
    return snr


def sample_field_at(field: np.ndarray, acq: Acquisition, centers_um: np.ndarray) -> np.ndarray:
    """Values of a field-of-view map at the rounded, clipped pixel of each (z, y, x) centre."""
    rows, cols = acq.um_to_index(centers_um[:, 1], centers_um[:, 2], field.shape)
    rows = np.clip(np.round(rows).astype(int), 0, field.shape[0] - 1)
    cols = np.clip(np.round(cols).astype(int), 0, field.shape[1] - 1)
    return field[rows, cols]


def is_detectable(transient, baseline, gain, read_noise_e) -> np.ndarray:
    """Kernel: SNR ≥ :data:`DETECT_SNR_THRESHOLD`, per cell."""
    return detection_snr(transient, baseline, gain, read_noise_e) >= DETECT_SNR_THRESHOLD


def calcium_range(scene):
    """Lazy per-cell (min, max) of the clean trace C over the whole recording, or None.

    Read from the activity scan's per-block extremes rather than from C itself, so the
    trace blocks are never computed early for a statistic and then held until the pixel
    work reads them.
    """
    extremes = scene.signals.get("calcium_extremes")  # (block, cell, [min, max])
    if extremes is None:
        return None
    return extremes[:, :, 0].min(axis=0), extremes[:, :, 1].max(axis=0)
