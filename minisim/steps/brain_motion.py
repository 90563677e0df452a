"""Brain motion: a rigid (dy, dx) translation of the tissue per frame.

The tissue (cells, neuropil, vessels) lives on a canvas wider than the field of view by a
margin sized from the motion bound, so real off-field tissue moves into view. Each frame
is shifted with bilinear interpolation and the field of view cropped out. A positive
shift moves content down/right; a motion-correction estimate is its negation.

Models:

* ``"physical"``: a damped harmonic oscillator (the brain on its mechanical resonance)
  driven by a locomotion rhythm whose gait frequency wanders, plus broadband sloshing,
  simulated at ``MOTION_SIM_HZ``, averaged over each frame's exposure, and scaled so the
  99th percentile of the displacement radius equals ``motion_amplitude_um``.
* ``"walk"``: a bounded Gaussian random walk.
* ``trajectory_um``: an explicit (dy, dx) µm per frame.

With ``nonrigid_um > 0`` a smooth, time-varying displacement field is added on top of the
rigid path (:mod:`minisim.steps.nonrigid_motion`); the shifts stay the rigid part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

import dask.array as da
import numpy as np
from pydantic import Field, model_validator
from scipy.signal import lfilter

from ..acquisition import Acquisition, NonNegativeFloat, PositiveFloat, ceil_px
from ..engine import ScanOutput, Scene, constant, scan, stream
from ..engine import portable_math as pm
from ..engine.backend import compiled as compiled_kernels
from . import nonrigid_motion as nonrigid
from .base import StepSpec, warn_spec

KIND = "brain_motion"
#: Rate of the oscillator simulation (Hz), rounded to a whole number of steps per frame.
MOTION_SIM_HZ = 300.0
#: Relative wander of the gait frequency, and its correlation time (s).
GAIT_WANDER = 0.15
GAIT_WANDER_TAU_S = 0.3
#: Correlation time of the broadband sloshing drive (s).
SLOSH_TAU_S = 0.12
#: Motion extents above this fraction of the field of view warn.
MOTION_WARN_FRACTION = 0.05
#: Motion beyond 10 mm would leave any brain; no gait is faster than 100 Hz (mice: 2–15).
MAX_SHIFT_UM = 10_000.0
MAX_LOCOMOTION_HZ = 100.0
#: ``nonrigid_um`` may be at most ``nonrigid_scale_um`` over this: the field's typical
#: gradient stays near 0.1, far from 1, where the warp would fold tissue over itself.
NONRIGID_FOLD_RATIO = 10.0


class BrainMotion(StepSpec):
    """Rigid in-plane brain motion.

    Parameters
    ----------
    model : "physical" or "walk"
        The generative model (ignored when ``trajectory_um`` is given).
    trajectory_um : list of (dy, dx) or None
        Explicit displacement per frame in µm; its length must equal the frame count.
    max_shift_um : float
        Hard bound on the displacement radius; it also sizes the canvas margin.
    locomotion_freq_hz, locomotion_axis, locomotion_fraction : float, "y"/"x", float
        The gait rhythm, the axis it shakes, and its share of the motion (the rest is
        broadband sloshing).
    resonance_freq_hz, damping_ratio : float
        The brain's mechanical resonance and damping.
    motion_amplitude_um : float
        99th percentile of the displacement radius (physical model).
    walk_step_um : float
        Standard deviation of each frame's step per axis (walk model).
    nonrigid_um : float
        Root-mean-square magnitude (over every field pixel and frame) of a smooth non-rigid
        displacement field added to the rigid path; 0 (default) keeps the motion rigid.
        The field never exceeds 8 × this, which the canvas margin accounts for.
    nonrigid_scale_um : float
        Spacing of the field's control nodes: its spatial scale.
    nonrigid_drift_s : float
        Time constant of each node's own slow drift.
    nonrigid_coupling : float
        Share (0–1) of the non-rigid field that follows the rigid drive (a per-node gain on
        the rigid trajectory); the rest is the drift.
    """

    kind: Literal["brain_motion"] = KIND
    order: ClassVar[float] = 80
    provides: ClassVar[tuple[str, ...]] = ("shift_y", "shift_x")
    may_provide: ClassVar[tuple[str, ...]] = (
        "observed",
        # with nonrigid_um > 0: the field's node time courses and node positions
        "nonrigid_y",
        "nonrigid_x",
        "node_y",
        "node_x",
    )
    model: Literal["physical", "walk"] = "physical"
    trajectory_um: tuple[tuple[float, float], ...] | None = None
    max_shift_um: PositiveFloat = 15.0
    locomotion_freq_hz: PositiveFloat = 7.0
    motion_amplitude_um: PositiveFloat = 10.0
    locomotion_axis: Literal["y", "x"] = "y"
    resonance_freq_hz: PositiveFloat = 6.0
    damping_ratio: PositiveFloat = 0.5
    locomotion_fraction: Annotated[float, Field(ge=0, le=1)] = 0.25
    walk_step_um: NonNegativeFloat = 0.3
    nonrigid_um: NonNegativeFloat = 0.0
    nonrigid_scale_um: PositiveFloat = 100.0
    nonrigid_drift_s: PositiveFloat = 5.0
    nonrigid_coupling: Annotated[float, Field(ge=0, le=1)] = 0.5

    @model_validator(mode="after")
    def _amplitude_within_bound(self):
        if self.model == "physical" and self.motion_amplitude_um > self.max_shift_um:
            raise ValueError(
                f"motion_amplitude_um={self.motion_amplitude_um:g} exceeds max_shift_um="
                f"{self.max_shift_um:g}: the 99th-percentile displacement cannot exceed the clamp"
            )
        if self.max_shift_um > MAX_SHIFT_UM:
            raise ValueError(
                f"brain_motion.max_shift_um={self.max_shift_um:g} exceeds {MAX_SHIFT_UM:g} µm, "
                "larger than any brain; it also sizes the canvas margin: give the bound in µm "
                "(typically 5–30)"
            )
        if self.locomotion_freq_hz > MAX_LOCOMOTION_HZ:
            raise ValueError(
                f"brain_motion.locomotion_freq_hz={self.locomotion_freq_hz:g} exceeds "
                f"{MAX_LOCOMOTION_HZ:g} Hz, faster than any gait: give the stride rate in Hz "
                "(mice: 2–15)"
            )
        if self.nonrigid_um > self.nonrigid_scale_um / NONRIGID_FOLD_RATIO:
            raise ValueError(
                f"brain_motion.nonrigid_um={self.nonrigid_um:g} exceeds nonrigid_scale_um / "
                f"{NONRIGID_FOLD_RATIO:g} = {self.nonrigid_scale_um / NONRIGID_FOLD_RATIO:g} µm: "
                "a field that strong over so short a scale would fold tissue over itself; lower "
                "nonrigid_um or raise nonrigid_scale_um"
            )
        return self

    def extent_um(self) -> float:
        """The largest displacement this motion can produce on one axis (µm)."""
        if self.trajectory_um is not None:
            return max((max(abs(dy), abs(dx)) for dy, dx in self.trajectory_um), default=0.0)
        return self.motion_amplitude_um if self.model == "physical" else self.max_shift_um

    def margin_px(self, acquisition: Acquisition) -> int:
        bound = self.max_shift_um if self.trajectory_um is None else self.extent_um()
        bound += nonrigid.NONRIGID_BOUND_FACTOR * self.nonrigid_um  # the field's hard bound
        px = ceil_px(bound, acquisition.pixel_size_um)
        return px + 1 if px > 0 else 0

    def check_in_spec(self, spec) -> None:
        acq = spec.acquisition
        if self.trajectory_um is not None and len(self.trajectory_um) != acq.n_frames:
            raise ValueError(
                f"brain_motion: trajectory_um has {len(self.trajectory_um)} entries but the "
                f"recording has {acq.n_frames} frames: give one (dy, dx) per frame"
            )
        if self.trajectory_um is not None:
            # An explicit trajectory sizes the canvas itself; beyond both its bound and the
            # field it only grows the canvas (a km would need terabytes per frame).
            reach = max((math.hypot(dy, dx) for dy, dx in self.trajectory_um), default=0.0)
            allowed = max(self.max_shift_um, max(acq.fov_um))
            if reach > allowed:
                raise ValueError(
                    f"brain_motion.trajectory_um reaches {reach:g} µm from rest, beyond both "
                    f"max_shift_um={self.max_shift_um:g} and the {max(acq.fov_um):g} µm field "
                    "(the tissue would leave the view; the canvas grows with the reach): check "
                    "the trajectory's units (µm), or raise max_shift_um to the motion you mean"
                )
        if self.trajectory_um is None and self.model == "physical":
            self._check_oscillator(acq)
        if self.nonrigid_um > 0:
            self._check_nonrigid_grid(acq)
        if self.model == "walk" and self.walk_step_um > self.max_shift_um:
            warn_spec(
                f"brain_motion.walk_step_um={self.walk_step_um:g} exceeds max_shift_um="
                f"{self.max_shift_um:g}: every step hits the bound; lower walk_step_um"
            )
        fov = min(acq.fov_um)
        extent = self.extent_um()
        if extent > MOTION_WARN_FRACTION * fov:
            warn_spec(
                f"Motion extent {extent:g} µm exceeds {MOTION_WARN_FRACTION:.0%} of the "
                f"{fov:g} µm field of view: lower BrainMotion(motion_amplitude_um=...) or "
                "widen the field with a coarser pixel"
            )

    def _check_nonrigid_grid(self, acq: Acquisition) -> None:
        """The field's control nodes must be a few pixels apart, and not too many."""
        spacing = self.nonrigid_scale_um / acq.pixel_size_um
        if spacing < nonrigid.MIN_NODE_SPACING_PX:
            raise ValueError(
                f"brain_motion.nonrigid_scale_um={self.nonrigid_scale_um:g} is "
                f"{spacing:.3g} px at {acq.pixel_size_um:g} µm/px, below "
                f"{nonrigid.MIN_NODE_SPACING_PX:g} px: the field would not be smooth; raise "
                f"nonrigid_scale_um to at least "
                f"{nonrigid.MIN_NODE_SPACING_PX * acq.pixel_size_um:g} µm"
            )
        height, width = acq.fov_shape
        ky = len(nonrigid.node_positions(height, spacing))
        kx = len(nonrigid.node_positions(width, spacing))
        if ky * kx > nonrigid.MAX_NODES:
            raise ValueError(
                f"brain_motion.nonrigid_scale_um={self.nonrigid_scale_um:g} gives {ky}×{kx} "
                f"control nodes over the field, more than {nonrigid.MAX_NODES}: that is a "
                "per-pixel field, not a smooth one; raise nonrigid_scale_um"
            )

    def _check_oscillator(self, acq: Acquisition) -> None:
        """The oscillator runs at ``steps·fps`` Hz: its gait must lie below that rate's
        Nyquist frequency, and its semi-implicit Euler step must be stable."""
        steps = max(round(MOTION_SIM_HZ / acq.fps), 1)
        rate = steps * acq.fps
        if self.locomotion_freq_hz > rate / 2:
            raise ValueError(
                f"brain_motion.locomotion_freq_hz={self.locomotion_freq_hz:g} is above the "
                f"Nyquist frequency ({rate / 2:g} Hz) of the motion simulation at fps="
                f"{acq.fps:g}: lower locomotion_freq_hz below {rate / 2:g}"
            )
        if self.locomotion_freq_hz > acq.fps / 2:
            warn_spec(
                f"brain_motion.locomotion_freq_hz={self.locomotion_freq_hz:g} is above the "
                f"frame rate's Nyquist frequency ({acq.fps / 2:g} Hz): the gait is averaged "
                "away within each exposure; raise fps to see it"
            )
        omega_dt = 2 * math.pi * self.resonance_freq_hz / rate
        damping = 2 * self.damping_ratio * omega_dt
        # z² + a1·z + a2 is stable iff c1·dt < 2 and c2·dt² + 2·c1·dt < 4 (Jury).
        if not (damping < 2 and omega_dt**2 + 2 * damping < 4):
            raise ValueError(
                f"brain_motion: resonance_freq_hz={self.resonance_freq_hz:g} with damping_ratio="
                f"{self.damping_ratio:g} makes the motion oscillator unstable at its "
                f"{rate:g} Hz simulation rate (it would blow up): lower resonance_freq_hz "
                "(brain: 2–20 Hz) or damping_ratio (typically 0.2–2)"
            )

    def build(self, scene: Scene) -> Scene:
        shifts = self.shifts_px(scene)
        height, width = scene.fov_shape
        top, left, _, _ = scene.fov_window
        movie = scene.movie
        if self.nonrigid_um > 0:
            return self._build_nonrigid(scene, shifts)
        if movie is not None:
            movie = scene.pixel_map(
                ("brain_motion",),
                shift_and_crop_frames,
                (height, width),
                movie.dtype,
                inputs=[(movie, 0), (shifts, 0)],
                constants=[np.array([top, left, height, width])],
            )
        return scene.evolve(
            movie=movie,
            coords={"shift_y": ("frame", shifts[:, 0]), "shift_x": ("frame", shifts[:, 1])},
        )

    def nonrigid_params(self, scene: Scene) -> nonrigid.NonrigidParams:
        acq: Acquisition = scene.context.acquisition
        return nonrigid.NonrigidParams.build(
            scene.seed,
            scene.fov_shape,
            self.nonrigid_scale_um / acq.pixel_size_um,
            self.nonrigid_drift_s * acq.fps,
            self.nonrigid_coupling,
            self.nonrigid_um / acq.pixel_size_um,
        )

    def nonrigid_parts(self, scene: Scene, shifts: da.Array, params: nonrigid.NonrigidParams):
        """The lazy (frame, node_y, node_x, 2) drift and the mixing scales (three numbers
        from every frame's block summaries)."""
        drift, powers = scan(
            scene.layer_name("brain_motion", "nonrigid", "drift"),
            nonrigid.drift_scan_step,
            init=np.zeros((*params.grid_shape, 2)),
            n_frames=scene.n_frames,
            outputs=[
                ScanOutput("drift", (None, *params.grid_shape, 2), np.float64),
                ScanOutput("powers", (3,), np.float64, per_block=True),
            ],
            sequences=[(shifts, 0)],
            constants=[constant(params, "nonrigid-params")],
        )
        scales = scene.cell_call(
            ("brain_motion", "statistic", "nonrigid"),
            nonrigid.mixing_scales,
            powers,
            scene.n_frames,
            params,
        )
        return drift, scales

    def _build_nonrigid(self, scene: Scene, shifts: da.Array) -> Scene:
        """Warp the canvas by rigid + non-rigid displacement; record the node time courses."""
        params = self.nonrigid_params(scene)
        shared = constant(params, "nonrigid-params")
        drift, scales = self.nonrigid_parts(scene, shifts, params)
        movie = scene.movie
        if movie is not None:
            movie = scene.pixel_map(
                ("brain_motion",),
                nonrigid.warp_and_crop_frames,
                scene.fov_shape,
                movie.dtype,
                inputs=[(movie, 0), (shifts, 0), (drift, 0)],
                constants=[np.array(scene.fov_window), scales, shared],
            )
        truth = {
            f"nonrigid_{axis}": (
                ("frame", "node_y", "node_x"),
                scene.frame_map(
                    ("brain_motion", "nonrigid", axis),
                    nonrigid.node_frames,
                    params.grid_shape,
                    np.float64,
                    inputs=[(shifts, 0), (drift, 0)],
                    constants=[scales, shared, index],
                ),
            )
            for index, axis in enumerate(("y", "x"))
        }
        return scene.evolve(
            movie=movie,
            truth=truth,
            coords={
                "shift_y": ("frame", shifts[:, 0]),
                "shift_x": ("frame", shifts[:, 1]),
                "node_y": ("node_y", params.nodes_y),
                "node_x": ("node_x", params.nodes_x),
            },
        )

    def shifts_px(self, scene: Scene) -> da.Array:
        """Lazy (frame, 2) applied (dy, dx) in pixels."""
        acq: Acquisition = scene.context.acquisition
        px = acq.pixel_size_um
        n = scene.n_frames
        if self.trajectory_um is not None:
            trajectory = np.asarray(self.trajectory_um, float).reshape(n, 2) / px
            shifts = da.from_array(
                trajectory, chunks=(n, 2), name=scene.layer_name("brain_motion", "trajectory")
            )
        elif self.model == "walk":
            params = WalkParams(scene.seed, self.walk_step_um / px, self.max_shift_um / px)
            (shifts,) = scan(
                scene.layer_name("brain_motion", "walk"),
                walk_scan_step,
                init=(np.zeros, 2),
                n_frames=n,
                outputs=[ScanOutput("shifts", (None, 2), np.float64)],
                constants=[constant(params, "walk-params")],
            )
        else:
            params = self.oscillator_params(acq, scene.seed)
            shared = constant(params, "motion-params")
            loco, slosh = scan(
                scene.layer_name("brain_motion", "drives"),
                oscillator_scan_step,
                init=(oscillator_initial_state, shared),
                n_frames=n,
                outputs=[
                    ScanOutput("locomotion", (None, 2), np.float64),
                    ScanOutput("sloshing", (None, 2), np.float64),
                ],
                constants=[shared],
            )
            # The scale is a statistic of the whole trajectory: one task over all frames.
            shifts = scene.statistic(
                ("brain_motion", "scale"),
                mix_and_scale_frames,
                (2,),
                np.float64,
                inputs=[(loco, 0), (slosh, 0)],
                constants=[
                    self.locomotion_fraction,
                    self.motion_amplitude_um / px,
                    self.max_shift_um / px,
                ],
            )
        return shifts

    def oscillator_params(self, acq: Acquisition, seed: int) -> OscillatorParams:
        steps = max(round(MOTION_SIM_HZ / acq.fps), 1)
        return OscillatorParams(
            seed=seed,
            steps_per_frame=steps,
            dt=1.0 / (steps * acq.fps),
            omega0=2 * math.pi * self.resonance_freq_hz,
            damping_ratio=self.damping_ratio,
            locomotion_freq_hz=self.locomotion_freq_hz,
            locomotion_axis=0 if self.locomotion_axis == "y" else 1,
        )


# --------------------------------------------------------------------------- kernels


@dataclass(frozen=True)
class WalkParams:
    seed: int
    step_px: float
    max_px: float


def walk_scan_step(position, block: int, start: int, stop: int, params: WalkParams):
    """A bounded random walk: each frame adds N(0, step) per axis, then clamps the radius."""
    steps = stream(params.seed, KIND, "walk", block).normal(0.0, params.step_px, (stop - start, 2))
    out = np.empty((stop - start, 2))
    pos = np.array(position, float)
    for k, frame in enumerate(range(start, stop)):
        if frame > 0:  # frame 0 is the rest position
            pos = clamp_radius(pos + steps[k], params.max_px)
        out[k] = pos
    return pos, out


def clamp_radius(shifts: np.ndarray, max_px: float) -> np.ndarray:
    """Rescale (…, 2) displacements whose radius exceeds ``max_px`` onto the bound."""
    radius = pm.hypot(shifts[..., 0], shifts[..., 1])
    factor = np.where(radius > max_px, max_px / np.maximum(radius, 1e-300), 1.0)
    return shifts * factor[..., None]


@dataclass(frozen=True)
class OscillatorParams:
    seed: int
    steps_per_frame: int
    dt: float
    omega0: float
    damping_ratio: float
    locomotion_freq_hz: float
    locomotion_axis: int

    def low_pass(self, tau_s: float) -> float:
        """Coefficient α of the one-pole low-pass ``y ← α·w + (1 − α)·y``."""
        return self.dt / (tau_s + self.dt)

    def oscillator(self):
        """lfilter coefficients of ``x'' + 2ζω0·x' + ω0²·x = a`` (semi-implicit Euler)."""
        c1, c2, dt = 2 * self.damping_ratio * self.omega0, self.omega0 * self.omega0, self.dt
        return [dt * dt], [1.0, -(2 - c1 * dt - c2 * dt * dt), 1 - c1 * dt]


#: The white-noise drives: gait wander, then sloshing along y and x.
DRIVES = ("gait", "slosh_y", "slosh_x")


def oscillator_initial_state(params: OscillatorParams):
    """Drives start stationary (unit variance), the oscillators start at rest."""
    rng = stream(params.seed, KIND, "initial")
    low_pass = {
        "gait": rng.standard_normal() * _stationary_std(params.low_pass(GAIT_WANDER_TAU_S)),
        "slosh_y": rng.standard_normal() * _stationary_std(params.low_pass(SLOSH_TAU_S)),
        "slosh_x": rng.standard_normal() * _stationary_std(params.low_pass(SLOSH_TAU_S)),
    }
    return {"low_pass": low_pass, "phase": 0.0, "oscillators": np.zeros((2, 2, 2))}


def _stationary_std(alpha: float) -> float:
    """Std of ``y ← α·w + (1 − α)·y`` driven by unit white noise, at steady state."""
    return math.sqrt(alpha / (2 - alpha))


def oscillator_scan_step(state, block: int, start: int, stop: int, params: OscillatorParams):
    """Advance the drives and both oscillators; return frame-averaged displacements."""
    n_steps = (stop - start) * params.steps_per_frame
    smoothed, low_pass = {}, {}
    for name in DRIVES:
        tau = GAIT_WANDER_TAU_S if name == "gait" else SLOSH_TAU_S
        alpha = params.low_pass(tau)
        white = stream(params.seed, KIND, name, block).standard_normal(n_steps)
        y, zf = lfilter(
            [alpha], [1.0, alpha - 1.0], white, zi=[(1 - alpha) * state["low_pass"][name]]
        )
        smoothed[name] = y / _stationary_std(alpha)  # unit variance
        low_pass[name] = y[-1]
        del zf
    freq = params.locomotion_freq_hz * (1 + GAIT_WANDER * smoothed["gait"])
    cycles = state["phase"] + np.cumsum(freq * params.dt)
    locomotion = np.zeros((n_steps, 2))
    locomotion[:, params.locomotion_axis] = pm.sin(2 * np.pi * cycles)
    sloshing = np.stack([smoothed["slosh_y"], smoothed["slosh_x"]], axis=1)
    b, a = params.oscillator()
    oscillators = np.array(state["oscillators"])
    frames = []
    for d, drive in enumerate((locomotion, sloshing)):
        x, oscillators[d] = lfilter(b, a, drive, axis=0, zi=oscillators[d])
        frames.append(x.reshape(stop - start, params.steps_per_frame, 2).mean(axis=1))
    new_state = {"low_pass": low_pass, "phase": float(cycles[-1] % 1.0), "oscillators": oscillators}
    return new_state, frames[0], frames[1]


def mix_and_scale_frames(start, stop, locomotion, sloshing, *args):
    """:func:`mix_and_scale` as a kernel over all frames [start, stop)."""
    return mix_and_scale(locomotion, sloshing, *args)


def mix_and_scale(locomotion, sloshing, fraction: float, amplitude_px: float, max_px: float):
    """Combine the two drives' responses into the applied trajectory (frame, 2) in px.

    Each response is taken relative to frame 0 and normalized to unit RMS radius; the mix
    is scaled so the 99th percentile of the radius equals the amplitude, then clamped.
    """
    parts = []
    for response in (locomotion, sloshing):
        rel = response - response[0]
        rms = math.sqrt(np.mean(np.sum(rel**2, axis=1)))
        parts.append(rel / rms if rms > 1e-12 else rel)
    trajectory = fraction * parts[0] + (1 - fraction) * parts[1]
    p99 = np.percentile(np.hypot(trajectory[:, 0], trajectory[:, 1]), 99)
    if p99 > 1e-12:
        trajectory = trajectory * (amplitude_px / p99)
    return clamp_radius(trajectory, max_px)


def shift_and_crop_frames(
    start: int, stop: int, canvas: np.ndarray, shifts: np.ndarray, window
) -> np.ndarray:
    """Translate each canvas frame by (+dy, +dx) and crop the field of view.

    ``out[i, j] = canvas(i + top − dy, j + left − dx)``, bilinearly interpolated: the four
    neighbouring canvas slices weighted by the fractional parts, zero outside the canvas.
    """
    top, left, height, width = (int(v) for v in window)
    out = np.empty((stop - start, height, width), canvas.dtype)
    for k in range(stop - start):
        out[k] = shift_and_crop(canvas[k], shifts[k, 0], shifts[k, 1], top, left, height, width)
    return out


def shift_and_crop(
    frame: np.ndarray, dy: float, dx: float, top: int, left: int, height: int, width: int
):
    """One frame of :func:`shift_and_crop_frames`."""
    sy, sx = top - dy, left - dx
    iy, ix = math.floor(sy), math.floor(sx)
    fy, fx = sy - iy, sx - ix
    w = frame.dtype.type
    compiled = _compiled_shift()
    if compiled is not None:  # the same operations in one pass
        out = np.empty((height, width), frame.dtype)
        if _inside(frame, iy, ix, height + 1, width + 1):
            source, row, col = np.ascontiguousarray(frame), iy, ix
        else:
            source, row, col = _window(frame, iy, ix, height + 1, width + 1), 0, 0
        weights = np.array([w(1 - fx), w(fx), w(1 - fy), w(fy)], frame.dtype)
        compiled.bilinear(source, row, col, weights, out)
        return out
    padded = _window(frame, iy, ix, height + 1, width + 1)
    rows0, rows1 = padded[:-1], padded[1:]
    upper = rows0[:, :-1] * w(1 - fx) + rows0[:, 1:] * w(fx)
    lower = rows1[:, :-1] * w(1 - fx) + rows1[:, 1:] * w(fx)
    return upper * w(1 - fy) + lower * w(fy)


def _compiled_shift():
    """The compiled shift, or None for numpy (:mod:`minisim.engine.backend`)."""
    if not compiled_kernels():
        return None
    from . import _motion_numba

    return _motion_numba


def _inside(frame: np.ndarray, row: int, col: int, height: int, width: int) -> bool:
    return (
        row >= 0 and col >= 0 and row + height <= frame.shape[0] and col + width <= frame.shape[1]
    )


def _window(frame: np.ndarray, row: int, col: int, height: int, width: int) -> np.ndarray:
    """frame[row:row+height, col:col+width], zero where it falls outside the frame."""
    if _inside(frame, row, col, height, width):
        return frame[row : row + height, col : col + width]
    out = np.zeros((height, width), frame.dtype)
    r0, r1 = max(row, 0), min(row + height, frame.shape[0])
    c0, c1 = max(col, 0), min(col + width, frame.shape[1])
    if r0 < r1 and c0 < c1:
        out[r0 - row : r1 - row, c0 - col : c1 - col] = frame[r0:r1, c0:c1]
    return out
