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
    ``read_noise_e`` may be the whole temporal noise floor besides shot noise
    (:func:`temporal_noise_e`).
    """
    peak, base, gain = np.broadcast_arrays(*(np.asarray(v, float) for v in (peak, base, gain)))
    signal = peak * gain
    noise = np.sqrt(np.maximum(base, 0) * gain + read_noise_e * read_noise_e)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(
            noise > 0, signal / np.where(noise > 0, noise, 1), np.where(signal > 0, np.inf, 0.0)
        )
    return snr


def temporal_noise_e(acq: Acquisition) -> float:
    """RMS (e⁻ per pixel per frame) of the noise a transient competes with besides the
    cell's own shot noise: read noise, the shot noise of the dark current (its variance is
    its mean, dark current × exposure, the exposure being the frame period) and row noise,
    added in quadrature: ``sqrt(read² + dark·(1/fps) + row²)``.

    Left out on purpose: the fixed pattern (black level, DSNU) is the same in every frame,
    so it shifts a pixel's baseline without hiding a transient above it (any pipeline
    subtracts a static background first); PRNU scales a pixel's signal and shot noise
    alike by about 1; hot pixels are a fraction of pixels, not the floor of a typical one.
    With every CMOS parameter at zero this is exactly ``read_noise_e``, so recordings
    without them are unchanged.
    """
    sensor = acq.image_sensor
    if sensor.dark_current_e_per_s == 0 and sensor.row_noise_e == 0:
        return sensor.read_noise_e
    dark_e = sensor.dark_current_e_per_s / acq.fps
    return float(np.sqrt(sensor.read_noise_e**2 + dark_e + sensor.row_noise_e**2))


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
