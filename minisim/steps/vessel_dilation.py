"""Breathing vessels: vessel radii that dilate and constrict over time.

Two drives move every vessel's radius, as a fraction of its rest radius (per layer)::

    dilation_l(t) = neurovascular_gain · (h ∗ p)(t) + vasomotion_amplitude · sin(2π f t + φ_l)

* functional hyperemia: ``p(t) = P(t)/mean(P) − 1`` is the relative change of the local
  population's summed calcium, and ``h`` the neurovascular coupling kernel
  ``h(τ) ∝ τ·exp(−τ/delay)`` (peaking ``neurovascular_delay_s`` after activity, unit sum,
  causal);
* vasomotion: a slow oscillation at ``vasomotion_hz`` (~0.1 Hz in mice) with a keyed
  random phase ``φ_l`` per layer.

The radius scale ``1 + dilation`` is clipped to [0.5, 1.5]. Every frame, each layer's
blood path length is recomputed from the vessel geometry with the scaled radii (chords
``2·sqrt((r·s)² − d²)`` of the same capsules as at rest), turned into Beer–Lambert
shading and blurred as at rest; the product over layers multiplies that frame of the
tissue. The geometry is stored as (pixel, distance², radius) pairs, so a frame costs a
weighted histogram and a blur, not a new rasterization.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from ..acquisition import FrozenModel
from ..engine import portable_math as pm
from ..engine import stream
from ..schema import Quantity

#: The stream kind of the vessels (the vasculature step's kind).
KIND = "vasculature"
#: Radius scales are clipped to this range (and the geometry is kept out to its top).
SCALE_RANGE = (0.5, 1.5)

VESSEL_DILATION = Quantity(
    "vessel_dilation", "coords", "vessel dilation", ("frame", "vessel_layer"), "float64",
    "fraction of rest radius",
    description="Radius change of every vessel of a layer: radius = rest radius · "
                "(1 + vessel_dilation), clipped to [0.5, 1.5] × rest.",
)  # fmt: skip


class VesselDilation(FrozenModel):
    """How the vessels of ``Vasculature`` breathe: coupled to activity and oscillating.

    Parameters
    ----------
    neurovascular_gain : float
        Fractional radius change per unit of relative population activity change
        (``P/mean(P) − 1``), after the neurovascular delay.
    neurovascular_delay_s : float
        Time from activity to the peak of the dilation it causes.
    vasomotion_amplitude : float
        Amplitude of the slow spontaneous oscillation, as a fraction of the radius.
    vasomotion_hz : float
        Its frequency (about 0.1 Hz).
    """

    neurovascular_gain: float = Field(0.05, ge=0, le=1)
    neurovascular_delay_s: float = Field(1.5, gt=0, le=30)
    vasomotion_amplitude: float = Field(0.05, ge=0, le=0.5)
    vasomotion_hz: float = Field(0.1, gt=0, le=10)


def coupling_kernel(delay_frames: float) -> np.ndarray:
    """Causal taps ``h(k) ∝ k·exp(−k/delay)`` for k = 0…ceil(8·delay), summing to 1."""
    taps = np.arange(int(math.ceil(8 * delay_frames)) + 1, dtype=np.float64)
    h = taps * pm.exp(-taps / delay_frames)
    return h / h.sum()


def causal_filter(signal: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """``Σ_k taps[k]·signal[t − k]`` (zero before the start), in a fixed order of sums
    (numpy's convolve may sum in a CPU-dependent order)."""
    out = np.zeros(len(signal))
    for k, tap in enumerate(taps[: len(signal)]):
        out[k:] += tap * signal[: len(signal) - k]
    return out


def dilation_series(
    population: np.ndarray | None,
    n_frames: int,
    n_layers: int,
    dilation: VesselDilation,
    fps: float,
    seed: int,
) -> np.ndarray:
    """(frame, layer) radius change of every layer over the whole recording."""
    out = np.zeros((n_frames, n_layers))
    if population is not None and dilation.neurovascular_gain > 0:
        population = np.asarray(population, np.float64)
        mean = population.mean()
        relative = population / mean - 1.0 if mean > 0 else np.zeros(n_frames)
        taps = coupling_kernel(dilation.neurovascular_delay_s * fps)
        out += dilation.neurovascular_gain * causal_filter(relative, taps)[:, None]
    if dilation.vasomotion_amplitude > 0:
        t = np.arange(n_frames) / fps
        for layer in range(n_layers):
            phase = stream(seed, KIND, "vasomotion", layer).uniform(0.0, 2 * math.pi)
            wave = pm.sin(2 * math.pi * dilation.vasomotion_hz * t + phase)
            out[:, layer] += dilation.vasomotion_amplitude * wave
    low, high = SCALE_RANGE
    return np.clip(out, low - 1.0, high - 1.0)


def vessel_pairs(segments: np.ndarray, canvas_shape, pixel_size_um: float):
    """(flat pixel index, distance² to the axis in µm², rest radius) of every pixel within
    the largest scaled radius of every segment, segment by segment (the order in which
    the rasterizer sums them)."""
    index, dist2, radius = [], [], []
    px, reach = pixel_size_um, SCALE_RANGE[1]
    for y0, x0, y1, x1, r in segments:
        far = r * reach
        r0 = max(int(math.floor((min(y0, y1) - far) / px)), 0)
        r1 = min(int(math.ceil((max(y0, y1) + far) / px)) + 1, canvas_shape[0])
        c0 = max(int(math.floor((min(x0, x1) - far) / px)), 0)
        c1 = min(int(math.ceil((max(x0, x1) + far) / px)) + 1, canvas_shape[1])
        if r0 >= r1 or c0 >= c1:
            continue
        rows, cols = np.arange(r0, r1)[:, None], np.arange(c0, c1)[None, :]
        py, pxx = (rows + 0.5) * px, (cols + 0.5) * px
        dy, dx = y1 - y0, x1 - x0
        norm = dy * dy + dx * dx
        t = (
            np.clip(((py - y0) * dy + (pxx - x0) * dx) / norm, 0, 1)
            if norm > 0
            else np.zeros_like(py + pxx)
        )
        d2 = np.square(py - (y0 + t * dy)) + np.square(pxx - (x0 + t * dx))
        near = d2 < far * far
        flat = (rows * canvas_shape[1] + cols) + np.zeros_like(d2, dtype=np.int64)
        index.append(flat[near])
        dist2.append(d2[near])
        radius.append(np.full(int(near.sum()), r))
    if not index:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    return np.concatenate(index), np.concatenate(dist2), np.concatenate(radius)


def path_length(pairs, scale: float, canvas_shape) -> np.ndarray:
    """Blood path length (µm) through each pixel with every radius times ``scale``."""
    index, dist2, radius = pairs
    scaled = radius * scale
    chords = 2 * np.sqrt(np.maximum(scaled * scaled - dist2, 0))
    length = np.bincount(index, weights=chords, minlength=canvas_shape[0] * canvas_shape[1])
    return length.reshape(canvas_shape)
