"""Calcium activity: a two-state gate, spikes, and a double-exponential calcium kernel.

Each cell switches between a quiescent and an active state once per frame (a Markov
gate). Within a frame, spikes fall on a grid of ``spike_sim_hz`` bins with at most one
spike per bin, at a continuous time inside their bin. Calcium is the sum of
double-exponential kernels ``exp(−t/τd) − exp(−t/τr)`` (peak-normalized), and the trace
of a frame is the kernel integrated analytically over that frame's exposure. Both
exponentials are first-order recurrences, so the state carried from frame to frame is
two numbers per cell, and the simulation runs at frame rate with no fine time grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator
from scipy.optimize import brentq
from scipy.signal import lfilter

from ..acquisition import NonNegativeFloat, PositiveFloat, warn_odd
from ..engine import ScanOutput, Scene, constant, scan, stream
from ..engine import portable_math as pm
from .base import StepSpec

KIND = "cell_activity"
#: Burn-in before frame 0, in decay time constants, so traces open at steady state.
BURN_IN_TAUS = 6.0

Probability = Annotated[float, Field(gt=0, le=1)]
#: Spikes last ~1 ms and a refractory period follows: nothing fires faster than 1 kHz, and
#: a spike grid finer than 0.1 ms resolves nothing more.
MAX_RATE_HZ = 1000.0
MAX_SPIKE_SIM_HZ = 10_000.0
#: Spike bins per frame: each spiking (frame, cell) draws one number per bin.
MAX_BINS_PER_FRAME = 10_000
#: The slowest calcium indicators decay within a minute (the burn-in is 6 decay times).
MAX_TAU_DECAY_S = 60.0
MAX_BRIGHTNESS_CV = 10.0
#: Intensities are in units of one spike's peak calcium; beyond this a spike is invisible
#: and the photon counts approach the integer range of the sensor's noise draws.
MAX_INTENSITY = 10_000.0


class CellActivity(StepSpec):
    """Spiking activity and the clean calcium trace of every cell.

    Parameters
    ----------
    spike_sim_hz : float
        Resolution of the spike process: at most one spike per ``1/spike_sim_hz`` s.
    p_quiescent_to_active, p_active_to_quiescent : float
        Per-frame switching probabilities of the activity gate.
    active_rate_hz, quiescent_rate_hz : float
        Spike rates in each state.
    tau_rise_s, tau_decay_s : float
        Calcium kernel time constants (rise < decay; ``tau_decay_s·fps ≥ 1``).
    brightness_cv : float
        Coefficient of variation of the per-cell brightness gain (log-normal, mean 1).
    f0 : float
        Baseline fluorescence, in units of one spike's peak calcium.
    trace_noise : float
        Standard deviation of optional additive Gaussian trace noise (not physical; 0).
    """

    kind: Literal["cell_activity"] = KIND
    order: ClassVar[float] = 20
    needs: ClassVar[tuple[str, ...]] = ("centers_um",)
    provides: ClassVar[tuple[str, ...]] = (
        "amplitude",
        "C",
        "S",
        "population_calcium",
        "calcium_extremes",
    )
    spike_sim_hz: PositiveFloat = 300.0
    p_quiescent_to_active: Probability = 0.005
    p_active_to_quiescent: Probability = 0.3
    active_rate_hz: PositiveFloat = 150.0
    quiescent_rate_hz: NonNegativeFloat = 0.6
    tau_rise_s: PositiveFloat = 0.05
    tau_decay_s: PositiveFloat = 0.5
    brightness_cv: NonNegativeFloat = 0.3
    f0: NonNegativeFloat = 1.0
    trace_noise: NonNegativeFloat = 0.0

    @model_validator(mode="after")
    def _rise_before_decay(self):
        if self.tau_rise_s >= self.tau_decay_s:
            raise ValueError(
                f"tau_rise_s={self.tau_rise_s:g} must be shorter than tau_decay_s="
                f"{self.tau_decay_s:g}: the kernel rises, then decays"
            )
        rules = (
            ("spike_sim_hz", MAX_SPIKE_SIM_HZ, "a spike grid finer than 0.1 ms resolves nothing"),
            ("active_rate_hz", MAX_RATE_HZ, "no neuron fires faster (refractory period ~1 ms)"),
            ("quiescent_rate_hz", MAX_RATE_HZ, "no neuron fires faster (refractory period ~1 ms)"),
            ("tau_decay_s", MAX_TAU_DECAY_S, "no calcium indicator decays that slowly"),
            ("brightness_cv", MAX_BRIGHTNESS_CV, "a few cells would hold all the light"),
            ("f0", MAX_INTENSITY, "a spike would be invisible on the baseline"),
            ("trace_noise", MAX_INTENSITY, "the traces would be noise only"),
        )
        for name, limit, why in rules:
            value = getattr(self, name)
            if value > limit:
                raise ValueError(
                    f"cell_activity.{name}={value:g} exceeds {limit:g}: {why}; use a value "
                    f"≤ {limit:g} (default {type(self).model_fields[name].default:g})"
                )
        if self.tau_rise_s < 1e-4:
            raise ValueError(
                f"cell_activity.tau_rise_s={self.tau_rise_s:g} is below 0.1 ms, faster than any "
                "indicator binds calcium: give the rise time in s (GCaMP6f: ~0.05)"
            )
        if self.brightness_cv > 2:
            warn_odd(
                f"cell_activity.brightness_cv={self.brightness_cv:g}: cells' brightness varies "
                "by more than twice its mean (typical 0.2–1); check it is a coefficient of "
                "variation, not a percentage"
            )
        if self.quiescent_rate_hz > self.active_rate_hz:
            warn_odd(
                f"cell_activity.quiescent_rate_hz={self.quiescent_rate_hz:g} exceeds "
                f"active_rate_hz={self.active_rate_hz:g}: cells fire less when 'active'; swap them?"
            )
        return self

    def check_in_spec(self, spec) -> None:
        fps = spec.acquisition.fps
        if self.tau_decay_s * fps < 1:
            raise ValueError(
                f"cell_activity: tau_decay_s·fps = {self.tau_decay_s:g}·{fps:g} = "
                f"{self.tau_decay_s * fps:.3g} < 1 frame, so the calcium decay is unresolvable "
                "at this frame rate: raise fps or tau_decay_s"
            )
        bins = max(round(self.spike_sim_hz / fps), 1)
        if bins > MAX_BINS_PER_FRAME:
            raise ValueError(
                f"cell_activity: spike_sim_hz/fps = {self.spike_sim_hz:g}/{fps:g} = {bins} spike "
                f"bins per frame, more than {MAX_BINS_PER_FRAME}: lower spike_sim_hz or raise fps"
            )
        representable = bins * fps  # at most one spike per bin
        for name in ("active_rate_hz", "quiescent_rate_hz"):
            rate = getattr(self, name)
            if rate > representable:
                raise ValueError(
                    f"cell_activity.{name}={rate:g} exceeds the {representable:g} Hz the spike "
                    f"grid can hold (one spike per bin: {bins} bins per frame at fps={fps:g}); "
                    f"it would be clipped silently: raise spike_sim_hz above {rate:g} or lower "
                    f"{name}"
                )

    def params(self, fps: float) -> ActivityParams:
        bins = max(round(self.spike_sim_hz / fps), 1)
        return ActivityParams(
            fps=fps,
            bins=bins,
            p_on=self.p_quiescent_to_active,
            p_off=self.p_active_to_quiescent,
            p_spike_active=min(self.active_rate_hz / (bins * fps), 1.0),
            p_spike_quiet=min(self.quiescent_rate_hz / (bins * fps), 1.0),
            tau_rise_s=self.tau_rise_s,
            tau_decay_s=self.tau_decay_s,
            f0=self.f0,
            trace_noise=self.trace_noise,
        )

    def build(self, scene: Scene) -> Scene:
        n = scene.n_cells
        params = self.params(scene.context.acquisition.fps)
        gains = brightness_gains(n, self.brightness_cv, stream(scene.seed, KIND, "gain"))
        burn_in = math.ceil(BURN_IN_TAUS * self.tau_decay_s * params.fps)
        shared = constant((params, gains, scene.seed), "cell_activity-params")
        C, S, population, extremes = scan(
            scene.layer_name("cell_activity"),
            activity_scan_step,
            init=(activity_initial_state, shared, n, burn_in),
            n_frames=scene.n_frames,
            outputs=[
                ScanOutput("C", (n, None), np.float32),
                ScanOutput("S", (n, None), np.float32),
                ScanOutput("population", (None,), np.float64),
                ScanOutput("extremes", (n, 2), np.float32, per_block=True),
            ],
            constants=[shared],
        )
        return scene.evolve(
            cells={"amplitude": gains},
            traces={"C": C, "S": S},
            signals={"population_calcium": population, "calcium_extremes": extremes},
        )


@dataclass(frozen=True)
class ActivityParams:
    """Per-frame parameters of the activity kernels, derived from the step and fps."""

    fps: float
    bins: int
    p_on: float
    p_off: float
    p_spike_active: float
    p_spike_quiet: float
    tau_rise_s: float
    tau_decay_s: float
    f0: float
    trace_noise: float


# --------------------------------------------------------------------------- kernels


@dataclass(frozen=True)
class BlockStreams:
    """One keyed stream per kind of draw, so each draws in (frame, cell) order alone.

    Separate streams keep a block's first frames identical when the block is longer: a
    recording's opening does not change when its duration does.
    """

    gate: np.random.Generator
    spikes: np.random.Generator
    bin_order: np.random.Generator
    in_bin: np.random.Generator

    @classmethod
    def keyed(cls, seed: int, phase: str, block: int) -> BlockStreams:
        return cls(
            *(
                stream(seed, KIND, f"{phase}/{what}", block)
                for what in ("gate", "spikes", "bin_order", "in_bin")
            )
        )


def brightness_gains(n: int, cv: float, rng: np.random.Generator) -> np.ndarray:
    """Per-cell log-normal gains with mean 1 and coefficient of variation ``cv``."""
    if cv <= 0 or n == 0:
        return np.ones(n)
    sigma = math.sqrt(pm.log1p(cv * cv))
    return pm.exp(rng.normal(-(sigma * sigma) / 2, sigma, n))


def gate_sequence(initial: np.ndarray, uniforms: np.ndarray, p_on: float, p_off: float):
    """States (frames, cells) of the two-state gate, vectorized over frames.

    Per frame and cell one uniform ``u``: a quiescent cell turns on iff ``u < p_on``; an
    active one stays on iff ``u ≥ p_off``. Depending on ``u`` the new state is forced to
    1, forced to 0, copied, or flipped from the previous one, so the sequence is the last
    forced value XOR the parity of flips since then.
    """
    turn_on = uniforms < p_on
    stay_on = uniforms >= p_off
    forced = turn_on == stay_on  # both true: 1 either way; both false: 0 either way
    flip = turn_on & ~stay_on
    frames = np.arange(len(uniforms))[:, None]
    last = np.maximum.accumulate(np.where(forced, frames, -1), axis=0)
    flips = np.cumsum(flip, axis=0)
    cols = np.broadcast_to(np.arange(uniforms.shape[1]), uniforms.shape)
    seen = last >= 0
    lastc = np.where(seen, last, 0)
    base = np.where(seen, turn_on[lastc, cols], initial[None, :])
    since = flips - np.where(seen, flips[lastc, cols], 0)
    return base ^ (since % 2 == 1)


def kernel_peak(tau_rise_s: float, tau_decay_s: float) -> tuple[float, float]:
    """Time and value of the maximum of ``exp(−t/τd) − exp(−t/τr)``."""
    t_peak = (
        tau_decay_s
        * tau_rise_s
        / (tau_decay_s - tau_rise_s)
        * float(pm.log(tau_decay_s / tau_rise_s))
    )
    return t_peak, float(pm.exp(-t_peak / tau_decay_s) - pm.exp(-t_peak / tau_rise_s))


def calcium_kernel(tau_rise_s: float, tau_decay_s: float, fps: float) -> np.ndarray:
    """The peak-normalized kernel sampled at ``t = i/fps`` out to five decay times."""
    t = np.arange(max(math.ceil(5 * tau_decay_s * fps), 2)) / fps
    k = pm.exp(-t / tau_decay_s) - pm.exp(-t / tau_rise_s)
    return k / kernel_peak(tau_rise_s, tau_decay_s)[1]


def kernel_timing(tau_rise_s: float, tau_decay_s: float) -> tuple[float, float]:
    """(time to peak, full width at half maximum) of the calcium kernel, in s."""
    t_peak, peak = kernel_peak(tau_rise_s, tau_decay_s)

    def above_half(t):
        return math.exp(-t / tau_decay_s) - math.exp(-t / tau_rise_s) - peak / 2

    t_up = brentq(above_half, 0.0, t_peak)
    t_down = brentq(above_half, t_peak, t_peak + 50 * tau_decay_s)
    return t_peak, t_down - t_up


def activity_initial_state(shared, n: int, burn_in: int):
    """State at frame 0: the gate drawn at its stationary law, then ``burn_in`` frames run."""
    params, _, seed = shared
    rng = stream(seed, KIND, "gate_init")
    stationary = params.p_on / (params.p_on + params.p_off)
    state = (rng.random(n) < stationary, np.zeros(n), np.zeros(n))
    if burn_in > 0:
        state = activity_block(state, burn_in, params, BlockStreams.keyed(seed, "burn_in", 0))[0]
    return state


def activity_scan_step(state, block: int, start: int, stop: int, shared):
    params, gains, seed = shared
    state, calcium, counts = activity_block(
        state, stop - start, params, BlockStreams.keyed(seed, "block", block)
    )
    trace = gains[:, None] * (params.f0 + calcium.T)
    if params.trace_noise > 0:
        trace = trace + params.trace_noise * stream(
            seed, KIND, "trace_noise", block
        ).standard_normal(trace.shape)
    trace = trace.astype(np.float32)
    # The population's summed calcium (what neuropil follows), from the stored traces.
    population = trace.sum(axis=0, dtype=np.float64)
    extremes = np.stack([trace.min(axis=1), trace.max(axis=1)], axis=1)
    return state, trace, counts.T.astype(np.float32), population, extremes


def activity_block(state, n_frames: int, params: ActivityParams, rngs: BlockStreams):
    """Advance ``n_frames`` frames: returns (state, calcium (frames, cells), spikes).

    ``state`` is (gate, x_decay, x_rise): the gate state of the last frame and the two
    exponential components of the calcium at the start of the next frame.
    """
    gate0, x_decay, x_rise = state
    n = len(gate0)
    gate = gate_sequence(gate0, rngs.gate.random((n_frames, n)), params.p_on, params.p_off)
    p_spike = np.where(gate, params.p_spike_active, params.p_spike_quiet)
    counts = rngs.spikes.binomial(params.bins, p_spike)
    times = _spike_times(counts, params.bins, 1.0 / params.fps, rngs.bin_order, rngs.in_bin)
    owner = np.repeat(np.arange(counts.size), counts.ravel())
    dt = 1.0 / params.fps
    components = []
    new_state = [gate[-1].copy() if n_frames else gate0]
    for tau, x0 in ((params.tau_decay_s, x_decay), (params.tau_rise_s, x_rise)):
        mean, x_next = exponential_frames(x0, owner, dt - times, counts.shape, dt, tau)
        components.append(mean)
        new_state.append(x_next)
    peak = kernel_peak(params.tau_rise_s, params.tau_decay_s)[1]
    calcium = (components[0] - components[1]) / peak
    return tuple(new_state), calcium, counts


def _spike_times(counts: np.ndarray, bins: int, dt: float, bin_order, in_bin) -> np.ndarray:
    """Times within the frame (s) of each spike, in (frame, cell) order.

    The k spikes of one (frame, cell) take k distinct bins (the first k of a random
    permutation of the bins), each at a uniform time inside its bin.
    """
    flat = counts.ravel()
    groups = np.flatnonzero(flat)
    if len(groups) == 0:
        return np.zeros(0)
    per_group = flat[groups]
    order = np.argsort(bin_order.random((len(groups), bins)), axis=1, kind="stable")
    group_of_spike = np.repeat(np.arange(len(groups)), per_group)
    rank = np.arange(len(group_of_spike)) - np.repeat(np.cumsum(per_group) - per_group, per_group)
    chosen_bin = order[group_of_spike, rank]
    return (chosen_bin + in_bin.random(len(chosen_bin))) * (dt / bins)


def exponential_frames(x0, owner, time_to_end, shape, dt: float, tau: float):
    """Frame-averaged value and end state of ``x' = −x/τ`` kicked by unit impulses.

    Parameters
    ----------
    x0 : (cells,) value at the start of the first frame.
    owner : (spikes,) flat (frame, cell) index of each impulse.
    time_to_end : (spikes,) time from each impulse to the end of its frame (s).
    shape : (frames, cells).

    Returns
    -------
    mean : (frames, cells) average of x over each frame's exposure.
    x_end : (cells,) value at the end of the last frame.
    """
    a = float(pm.exp(-dt / tau))
    decay = pm.exp(-time_to_end / tau)
    size = shape[0] * shape[1]
    kick_end = np.bincount(owner, weights=decay, minlength=size).reshape(shape)
    kick_mean = np.bincount(owner, weights=tau * (1 - decay) / dt, minlength=size).reshape(shape)
    if shape[0] == 0:
        return np.zeros(shape), x0
    x_end = lfilter([1.0], [1.0, -a], kick_end, axis=0, zi=(a * x0)[None, :])[0]
    x_start = np.concatenate([x0[None, :], x_end[:-1]], axis=0)
    return x_start * (tau * (1 - a) / dt) + kick_mean, x_end[-1].copy()
