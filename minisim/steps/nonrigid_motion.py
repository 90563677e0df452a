"""Non-rigid brain motion: a smooth displacement field on top of the rigid path.

The brain does not move as one block: it bends, and different parts of the field of view
shift by different amounts. The model here is a coarse grid of control nodes spaced by
``nonrigid_scale_um`` over the field of view, each carrying a (dy, dx) displacement per
frame, interpolated to every pixel by a cubic B-spline (smooth, and a convex combination
of the nodes, so the field never exceeds its largest node). Each node's time course mixes

* a part coupled to the rigid motion's drive: a random per-node, per-axis gain on the rigid
  trajectory (parts of the field move more, less or against the mean motion), and
* a slow drift of its own: an Ornstein–Uhlenbeck process with time constant
  ``nonrigid_drift_s``, starting at rest on frame 0 (computed by a scan over the engine's
  fixed block grid, so it is chunk-invariant).

Both parts have zero mean over the nodes, so the rigid shifts stay the field's mean motion.
They are mixed by ``nonrigid_coupling`` (like the rigid model's locomotion fraction) and
scaled so the root-mean-square magnitude of the non-rigid displacement over every pixel of
the field of view and every frame equals ``nonrigid_um`` (computed exactly from the node
time courses, no pixels needed); each node's radius is then clamped at
``NONRIGID_BOUND_FACTOR × nonrigid_um``, which bounds the field everywhere and sizes the
canvas margin.

The warp: the content at pixel p of frame t comes from the rest position p − d(t, p) with
d = rigid + non-rigid, bilinearly interpolated on the canvas, zero outside it. Every value
that reaches the movie's bytes is made of + − × ÷, floor and ``portable_math``, in a fixed
order per pixel, so the bytes are the same on any CPU and in any chunking.

The ground truth is compact: the node time courses (``nonrigid_y``, ``nonrigid_x`` on
(frame, node_y, node_x)) and the node positions; :func:`displacement_field` rebuilds the
dense (frame, y, x, 2) displacement from them exactly as the warp used it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from ..engine import portable_math as pm
from ..engine import stream

KIND = "brain_motion"  # the streams belong to the motion step
#: The node radius is clamped at this multiple of ``nonrigid_um`` (the RMS magnitude): the
#: field's hard bound, which the canvas margin accounts for. Nodes carry about twice the
#: field's RMS (the B-spline averages neighbours), so the clamp acts only on rare
#: excursions: with a field that follows the rigid path (whose tails reach its bound) it
#: can take up to a few percent off the RMS; with the drift alone, nothing measurable.
NONRIGID_BOUND_FACTOR = 8.0
#: Control nodes closer than this many pixels would not make a smooth field.
MIN_NODE_SPACING_PX = 4.0
#: More control nodes than this over the field is a per-pixel field, not a smooth one
#: (and its ground truth would rival the movie in size).
MAX_NODES = 4096


# --------------------------------------------------------------------------- the grid


def node_positions(n_px: int, spacing_px: float) -> np.ndarray:
    """Control-node positions (field pixels) along one axis, centred on the field.

    The inner nodes span at least the field; one more on each side gives every pixel the
    four nodes a cubic B-spline needs.
    """
    inner = math.ceil(round((n_px - 1) / spacing_px, 9)) + 1
    count = inner + 2
    centre = (n_px - 1) / 2
    return centre + (np.arange(count, dtype=np.float64) - (count - 1) / 2) * spacing_px


def node_spacing(nodes: np.ndarray) -> float:
    """The grid's spacing, as every consumer computes it (so weights agree bit for bit)."""
    return float(nodes[1] - nodes[0])


def bspline_weights(positions: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """(n_positions, n_nodes) cubic B-spline weights: non-negative, summing to 1 inside.

    B(u) = (4 − 6u² + 3|u|³)/6 for |u| < 1, (2 − |u|)³/6 for 1 ≤ |u| < 2, else 0, with
    u = (position − node) / spacing. Plain arithmetic only.
    """
    spacing = node_spacing(nodes)
    u = np.abs((np.asarray(positions, np.float64)[:, None] - nodes[None, :]) / spacing)
    near = (4.0 - 6.0 * u * u + 3.0 * u * u * u) / 6.0
    far = (2.0 - u) * (2.0 - u) * (2.0 - u) / 6.0
    return np.where(u < 1.0, near, np.where(u < 2.0, far, 0.0))


def field_gram(weights: np.ndarray) -> np.ndarray:
    """Mean over pixels of w_a·w_b: (n_nodes, n_nodes), summed in pixel order."""
    gram = np.zeros((weights.shape[1], weights.shape[1]))
    for row in weights:
        gram += row[:, None] * row[None, :]
    return gram / weights.shape[0]


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True, eq=False)
class NonrigidParams:
    """Everything the non-rigid kernels need; small (the grid and per-node gains)."""

    seed: int
    fov_shape: tuple[int, int]
    nodes_y: np.ndarray  # node positions (field px)
    nodes_x: np.ndarray
    gains: np.ndarray  # (node_y, node_x, 2) gain on the rigid shift, zero mean over nodes
    rho: float  # OU decay per frame
    coupling: float
    amplitude_px: float
    bound_px: float

    @property
    def grid_shape(self) -> tuple[int, int]:
        return len(self.nodes_y), len(self.nodes_x)

    @classmethod
    def build(
        cls,
        seed: int,
        fov_shape: tuple[int, int],
        spacing_px: float,
        drift_frames: float,
        coupling: float,
        amplitude_px: float,
    ) -> NonrigidParams:
        nodes_y = node_positions(fov_shape[0], spacing_px)
        nodes_x = node_positions(fov_shape[1], spacing_px)
        # Bounded gains (uniform): a Gaussian gain's tail times the rigid path's tail would
        # make the clamp act often on a few nodes.
        shape = (len(nodes_y), len(nodes_x), 2)
        gains = stream(seed, KIND, "nonrigid-gain").uniform(-1.0, 1.0, shape)
        return cls(
            seed=seed,
            fov_shape=(int(fov_shape[0]), int(fov_shape[1])),
            nodes_y=nodes_y,
            nodes_x=nodes_x,
            gains=_centred(gains),
            rho=pm.exp(-1.0 / drift_frames),
            coupling=coupling,
            amplitude_px=amplitude_px,
            bound_px=NONRIGID_BOUND_FACTOR * amplitude_px,
        )


def _centred(nodes: np.ndarray) -> np.ndarray:
    """Remove the mean over the node grid (axes −3, −2) per frame and axis."""
    count = nodes.shape[-3] * nodes.shape[-2]
    total = np.zeros(nodes.shape[:-3] + nodes.shape[-1:])
    for j in range(nodes.shape[-3]):
        for i in range(nodes.shape[-2]):
            total = total + nodes[..., j, i, :]
    return nodes - (total / count)[..., None, None, :]


# --------------------------------------------------------------------------- time courses


def drift_scan_step(state, block: int, start: int, stop: int, shifts, params: NonrigidParams):
    """One scan block: the drift (OU per node and axis, at rest on frame 0), centred over
    the nodes, and the block's field powers (Σ⟨U,U⟩, Σ⟨D,D⟩, Σ⟨U,D⟩) of the coupled part
    U = gains·shift and the drift D, for the whole-recording scale."""
    n = stop - start
    ky, kx = params.grid_shape
    white = stream(params.seed, KIND, "nonrigid-drift", block).standard_normal((n, ky * kx * 2))
    if start == 0:
        white[0] = 0.0  # frame 0 is the rest position
    rho = params.rho
    sigma = math.sqrt(1.0 - rho * rho)
    raw, _ = lfilter(
        [sigma], [1.0, -rho], white, axis=0, zi=(rho * np.asarray(state, float)).reshape(1, -1)
    )
    new_state = raw[-1].reshape(ky, kx, 2).copy()
    drift = _centred(raw.reshape(n, ky, kx, 2))
    coupled = coupled_part(shifts, params)
    gram_y, gram_x = grams(params)
    powers = np.array(
        [
            field_inner(coupled, coupled, gram_y, gram_x).sum(),
            field_inner(drift, drift, gram_y, gram_x).sum(),
            field_inner(coupled, drift, gram_y, gram_x).sum(),
        ]
    )
    return new_state, drift, powers


def grams(params: NonrigidParams) -> tuple[np.ndarray, np.ndarray]:
    """The field's Gram matrices along y and x over the field of view's pixels."""
    wy, wx = field_weights(params.fov_shape, params.nodes_y, params.nodes_x)
    return field_gram(wy), field_gram(wx)


def field_weights(fov_shape, nodes_y, nodes_x) -> tuple[np.ndarray, np.ndarray]:
    """B-spline weights of every field row and column: (height, node_y), (width, node_x)."""
    height, width = (int(v) for v in fov_shape)
    wy = bspline_weights(np.arange(height, dtype=np.float64), np.asarray(nodes_y, np.float64))
    wx = bspline_weights(np.arange(width, dtype=np.float64), np.asarray(nodes_x, np.float64))
    return wy, wx


def coupled_part(shifts: np.ndarray, params: NonrigidParams) -> np.ndarray:
    """(frame, node_y, node_x, 2): each node's gain times the rigid shift."""
    return params.gains[None] * np.asarray(shifts, np.float64)[:, None, None, :]


def field_inner(a: np.ndarray, b: np.ndarray, gram_y: np.ndarray, gram_x: np.ndarray):
    """Per frame, the mean over field pixels of the dot product of two node fields'
    interpolations: Σ_axis Σ a[j,i]·Gy[j,j']·Gx[i,i']·b[j',i'] (fixed summation order)."""
    ky, kx = gram_y.shape[0], gram_x.shape[0]
    left = np.zeros_like(a)  # Gy @ a, per frame and axis
    for j in range(ky):
        left += gram_y[:, j][None, :, None, None] * a[:, j][:, None, :, :]
    both = np.zeros_like(a)  # (Gy @ a) @ Gx
    for i in range(kx):
        both += left[:, :, i][:, :, None, :] * gram_x[i, :][None, None, :, None]
    products = both * b
    out = np.zeros(a.shape[0])
    for j in range(ky):
        for i in range(kx):
            out = out + products[:, j, i, 0] + products[:, j, i, 1]
    return out


def mixing_scales(powers: np.ndarray, n_frames: int, params: NonrigidParams) -> np.ndarray:
    """(a_u, a_d): node time courses are a_u·U + a_d·D, so the RMS magnitude of the field
    over every pixel and frame equals the amplitude. Each part is first normalized to unit
    RMS and weighted by the coupling (a part that is identically zero is left out)."""
    totals = np.zeros(3)
    for row in np.asarray(powers, np.float64).reshape(-1, 3):
        totals = totals + row
    uu, dd, ud = totals / max(n_frames, 1)
    norm_u, norm_d = math.sqrt(max(uu, 0.0)), math.sqrt(max(dd, 0.0))
    w_u = params.coupling if norm_u > 1e-12 else 0.0
    w_d = 1.0 - params.coupling if norm_d > 1e-12 else 0.0
    cross = ud / (norm_u * norm_d) if w_u and w_d else 0.0
    mix = math.sqrt(max(w_u * w_u + w_d * w_d + 2.0 * w_u * w_d * cross, 0.0))
    if mix <= 1e-12:
        return np.zeros(2)
    scale = params.amplitude_px / mix
    return np.array([scale * w_u / norm_u if w_u else 0.0, scale * w_d / norm_d if w_d else 0.0])


def node_displacements(shifts, drift, scales, params: NonrigidParams) -> np.ndarray:
    """(frame, node_y, node_x, 2) non-rigid displacement of each node (px), clamped."""
    from .brain_motion import clamp_radius

    mixed = scales[0] * coupled_part(shifts, params) + scales[1] * np.asarray(drift, np.float64)
    return clamp_radius(mixed, params.bound_px)


def node_frames(start, stop, shifts, drift, scales, params: NonrigidParams, axis: int):
    """Kernel: one axis (0: y, 1: x) of :func:`node_displacements` for frames [start, stop)."""
    return node_displacements(shifts, drift, np.asarray(scales), params)[..., axis]


# --------------------------------------------------------------------------- the field


def _support(weights: np.ndarray) -> list[tuple[int, int]]:
    """For each node, the [first, last + 1) pixel range where its weight is non-zero."""
    ranges = []
    for column in weights.T:
        hit = np.flatnonzero(column)
        ranges.append((int(hit[0]), int(hit[-1]) + 1) if hit.size else (0, 0))
    return ranges


def displacement_field(
    shifts: np.ndarray,
    nodes: np.ndarray,
    weights_y: np.ndarray,
    weights_x: np.ndarray,
) -> np.ndarray:
    """(frame, y, x, 2) total displacement: rigid shift plus the interpolated node field.

    ``nodes`` is (frame, node_y, node_x, 2). Each pixel adds its nodes' contributions in
    node order (skipping only exact zeros), then the rigid shift: the same float
    operations whatever block of frames or pixels holds it.
    """
    nodes = np.asarray(nodes, np.float64)
    n, ky, kx, _ = nodes.shape
    height, width = weights_y.shape[0], weights_x.shape[0]
    rows = np.zeros((n, height, kx, 2))
    for j, (lo, hi) in enumerate(_support(weights_y)):
        rows[:, lo:hi] += weights_y[lo:hi, j][None, :, None, None] * nodes[:, j][:, None, :, :]
    field = np.zeros((n, height, width, 2))
    for i, (lo, hi) in enumerate(_support(weights_x)):
        field[:, :, lo:hi] += (
            rows[:, :, i][:, :, None, :] * weights_x[lo:hi, i][None, None, :, None]
        )
    return field + np.asarray(shifts, np.float64)[:, None, None, :]


def displacement_frames(start, stop, shifts, nodes_y_t, nodes_x_t, nodes_y, nodes_x, shape):
    """Kernel of ``gt.displacement``: the dense field of frames [start, stop) from the
    stored node time courses (frame, node_y, node_x) per axis and the node positions."""
    nodes = np.stack([np.asarray(nodes_y_t, np.float64), np.asarray(nodes_x_t, np.float64)], -1)
    wy, wx = field_weights(shape, nodes_y, nodes_x)
    return displacement_field(shifts, nodes, wy, wx)


def rigid_field_frames(start, stop, shifts, shape):
    """Kernel of ``gt.displacement`` without a non-rigid field: the shift at every pixel."""
    height, width = (int(v) for v in shape)
    field = np.zeros((stop - start, height, width, 2))
    return field + np.asarray(shifts, np.float64)[:, None, None, :]


# --------------------------------------------------------------------------- the warp


def warp_and_crop_frames(
    start, stop, canvas, shifts, drift, window, scales, params: NonrigidParams
) -> np.ndarray:
    """Kernel: warp each canvas frame by its displacement field and crop the field of view.

    ``out[t, i, j] = canvas(i + top − dy(t, i, j), j + left − dx(t, i, j))``, bilinear,
    zero outside the canvas.
    """
    top, left, height, width = (int(v) for v in window)
    nodes = node_displacements(shifts, drift, np.asarray(scales), params)
    wy, wx = field_weights((height, width), params.nodes_y, params.nodes_x)
    out = np.empty((stop - start, height, width), canvas.dtype)
    for k in range(stop - start):
        field = displacement_field(shifts[k : k + 1], nodes[k : k + 1], wy, wx)[0]
        out[k] = warp_and_crop(canvas[k], field, top, left)
    return out


def warp_and_crop(frame: np.ndarray, field: np.ndarray, top: int, left: int) -> np.ndarray:
    """One frame of :func:`warp_and_crop_frames`; ``field`` is (height, width, 2) in px."""
    height, width = field.shape[:2]
    rows = np.arange(height, dtype=np.float64)[:, None] + top
    cols = np.arange(width, dtype=np.float64)[None, :] + left
    sy, sx = rows - field[..., 0], cols - field[..., 1]
    iy, ix = np.floor(sy), np.floor(sx)
    w = frame.dtype.type
    fy, fx = (sy - iy).astype(w), (sx - ix).astype(w)
    # One zero row/column around the canvas: any neighbour outside it reads a zero.
    padded = np.zeros((frame.shape[0] + 2, frame.shape[1] + 2), frame.dtype)
    padded[1:-1, 1:-1] = frame
    r0 = np.clip(iy + 1, 0, frame.shape[0] + 1).astype(np.intp)
    r1 = np.clip(iy + 2, 0, frame.shape[0] + 1).astype(np.intp)
    c0 = np.clip(ix + 1, 0, frame.shape[1] + 1).astype(np.intp)
    c1 = np.clip(ix + 2, 0, frame.shape[1] + 1).astype(np.intp)
    one = w(1)
    upper = padded[r0, c0] * (one - fx) + padded[r0, c1] * fx
    lower = padded[r1, c0] * (one - fx) + padded[r1, c1] * fx
    return upper * (one - fy) + lower * fy
