"""The compiled readout arithmetic of :mod:`minisim.steps.sensor` (imported only with numba).

Each kernel repeats, one pixel at a time, the operations of the numpy readout in
:func:`minisim.steps.sensor.digitize_frame` in the same order, so the two give identical
bytes; fused into two passes, it skips the half-dozen float64 frame temporaries the numpy
version allocates and sweeps. numba compiles without ``fastmath``: LLVM may neither fuse a
multiply-add nor reorder a sum, so every operation is rounded as written on any CPU.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_jit = numba.njit(nogil=True, cache=True, error_model="numpy")

#: How the electrons are read from the expectation (``to_counts``'s ``mode``).
NOISELESS, POISSON_PLUS_READ, GAUSSIAN = 0, 1, 2


@_jit
def expected_electrons(intensity, photons_per_unit, quantum_efficiency, gain, dark, out):
    """out = max(intensity·photons, 0)·QE [·gain] [+ dark], in float64, per pixel."""
    has_gain, has_dark = gain.size > 0, dark.size > 0
    for i in range(intensity.size):
        e = np.float64(intensity[i]) * photons_per_unit
        if not e >= 0.0:  # np.maximum(e, 0): NaN stays NaN (the sampler rejects it)
            e = e if e != e else 0.0
        e = e * quantum_efficiency
        if has_gain:
            e = e * gain[i]
        if has_dark:
            e = e + dark[i]
        out[i] = e


@_jit
def to_counts(
    electrons, normal, mode, read_noise_e, offset, rows, width, gain_adu, black, top, out
):
    """Read noise (or the Gaussian shot + read draw), fixed offset, row offsets, gain,
    black level, floor and clip into the ADC's range, per pixel."""
    read_variance = read_noise_e * read_noise_e
    has_offset, has_rows = offset.size > 0, rows.size > 0
    for i in range(electrons.size):
        e = electrons[i]
        if mode == POISSON_PLUS_READ:
            e = e + normal[i] * read_noise_e
        elif mode == GAUSSIAN:
            e = e + math.sqrt(e + read_variance) * normal[i]
        if has_offset:
            e = e + offset[i]
        if has_rows:
            e = e + rows[i // width]
        e = e * gain_adu
        if black > 0.0:
            e = e + black
        e = math.floor(e)
        if e < 0.0:
            e = 0.0
        elif e > top:
            e = top
        out[i] = e
