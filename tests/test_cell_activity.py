"""Physics tests of the activity gate, spikes and calcium traces (``cell_activity``).

Kernels are checked against eager references and closed forms (numerical quadrature of
the exact exponential responses); the statistics of full simulations against the gate's
stationary law, with tolerances of five standard errors derived from the sample size.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import integrate, stats

from minisim import (
    Acquisition,
    CellActivity,
    ImageSensor,
    Optics,
    PlaceNeurons,
    Spec,
    simulate,
)
from minisim.engine import SCAN_BLOCK
from minisim.steps.cell_activity import (
    ActivityParams,
    BlockStreams,
    _spike_times,
    activity_block,
    exponential_frames,
    gate_sequence,
    kernel_peak,
    kernel_timing,
)

Z = 5.0  # standard errors allowed in statistical checks


def acquisition(n_px: int = 40, fps: float = 20.0, duration_s: float = 20.0) -> Acquisition:
    return Acquisition(
        image_sensor=ImageSensor(n_px_height=n_px, n_px_width=n_px, pixel_pitch_um=8.0),
        optics=Optics(magnification=8.0),
        fps=fps,
        duration_s=duration_s,
    )


def many_cells(n_cells: int, n_px: int = 40) -> PlaceNeurons:
    """About ``n_cells`` one-pixel cells in a 0–200 µm band (placement stays cheap)."""
    volume_mm3 = (n_px / 1000) ** 2 * 0.2
    return PlaceNeurons(density_per_mm3=n_cells / volume_mm3, soma_radius_um=0.5, irregularity=0)


def traces(activity: CellActivity, n_cells: int = 2000, seed: int = 1, **acq):
    spec = Spec(acquisition=acquisition(**acq), seed=seed, steps=[many_cells(n_cells), activity])
    gt = simulate(spec).ground_truth
    assert gt.n_units == n_cells
    return spec, gt.C.values, gt.S.values, gt.amplitude.values


def stationary(p_on: float, p_off: float) -> float:
    return p_on / (p_on + p_off)


def markov_mean_variance_factor(p_on: float, p_off: float) -> float:
    """(1 + λ)/(1 − λ), λ = 1 − p_on − p_off: variance inflation of a gate time average."""
    lam = 1 - p_on - p_off
    return (1 + lam) / (1 - lam)


# --------------------------------------------------------------------------- gate


def gate_reference(initial, uniforms, p_on, p_off):
    """Eager frame-by-frame loop: quiet → on iff u < p_on; on → stays on iff u ≥ p_off."""
    state = np.array(initial, bool)
    out = np.empty(uniforms.shape, bool)
    for t, u in enumerate(uniforms):
        for i in range(len(state)):
            state[i] = (u[i] >= p_off) if state[i] else (u[i] < p_on)
        out[t] = state
    return out


@pytest.mark.parametrize(
    ("p_on", "p_off"),
    [(0.005, 0.3), (0.2, 0.5), (0.5, 0.5), (0.7, 0.6), (0.9, 0.95), (1.0, 1.0), (1.0, 0.01)],
)
def test_gate_sequence_matches_eager_loop(p_on, p_off):
    rng = np.random.default_rng(0)
    uniforms = rng.random((400, 30))
    # Exact threshold values exercise the strict/non-strict comparisons.
    uniforms[::7, ::3] = p_on
    uniforms[3::11, 1::4] = p_off
    initial = rng.random(30) < 0.5
    got = gate_sequence(initial, uniforms, p_on, p_off)
    expected = gate_reference(initial, uniforms, p_on, p_off)
    assert got.dtype == bool
    np.testing.assert_array_equal(got, expected)
    assert gate_sequence(initial, uniforms[:0], p_on, p_off).shape == (0, 30)


# --------------------------------------------------------------------------- kernel


@pytest.mark.parametrize(("tau_rise", "tau_decay"), [(0.05, 0.5), (0.01, 0.2), (0.2, 0.25)])
def test_kernel_timing_closed_form_and_fine_grid(tau_rise, tau_decay):
    t_peak, fwhm = kernel_timing(tau_rise, tau_decay)
    closed = tau_decay * tau_rise / (tau_decay - tau_rise) * math.log(tau_decay / tau_rise)
    assert t_peak == pytest.approx(closed, rel=1e-12)
    t = np.arange(0.0, 20 * tau_decay, 1e-5)  # 100 kHz grid
    k = np.exp(-t / tau_decay) - np.exp(-t / tau_rise)
    assert abs(t[np.argmax(k)] - t_peak) <= 1e-5
    assert kernel_peak(tau_rise, tau_decay)[1] == pytest.approx(k.max(), rel=1e-8)
    above = t[k >= k.max() / 2]
    assert abs((above[-1] - above[0]) - fwhm) < 1e-4


def test_kernel_timing_defaults():
    t_peak, fwhm = kernel_timing(0.05, 0.5)
    assert t_peak == pytest.approx(0.12792, abs=5e-6)
    assert fwhm == pytest.approx(0.50177, abs=5e-6)


def frame_mean_of_impulse(k: int, dt: float, tau: float, t_spike: float) -> float:
    """(1/dt)∫ over frame k of the response exp(−(t − t_spike)/τ)·H(t − t_spike)."""
    lo, hi = k * dt, (k + 1) * dt
    if hi <= t_spike:
        return 0.0
    lo = max(lo, t_spike)
    value, _ = integrate.quad(
        lambda t: math.exp(-(t - t_spike) / tau), lo, hi, epsabs=0, epsrel=1e-13
    )
    return value / dt


@pytest.mark.parametrize("tau", [0.05, 0.5, 3.0])
def test_exponential_frames_single_impulse_matches_quadrature(tau):
    dt, n_frames = 1 / 20, 12
    # cell 0: one impulse inside frame 0; cell 1: only an initial value; cell 2: both,
    # plus a second impulse in frame 4; cell 3: nothing.
    t0, t1 = 0.0137, 4 * dt + 0.031
    x0 = np.array([0.0, 0.7, 1.3, 0.0])
    owner = np.array([0 * 4 + 0, 0 * 4 + 2, 4 * 4 + 2])  # flat (frame, cell)
    time_to_end = np.array([dt - t0, dt - t0, 5 * dt - t1])
    mean, x_end = exponential_frames(x0, owner, time_to_end, (n_frames, 4), dt, tau)
    assert mean.shape == (n_frames, 4)
    for k in range(n_frames):
        impulse = frame_mean_of_impulse(k, dt, tau, t0)
        # An initial value is an impulse at t = 0 scaled by x0.
        start = frame_mean_of_impulse(k, dt, tau, 0.0)
        second = frame_mean_of_impulse(k, dt, tau, t1)
        expected = [impulse, 0.7 * start, 1.3 * start + impulse + second, 0.0]
        np.testing.assert_allclose(mean[k], expected, rtol=1e-10, atol=0)
    end = n_frames * dt
    np.testing.assert_allclose(
        x_end,
        [
            math.exp(-(end - t0) / tau),
            0.7 * math.exp(-end / tau),
            1.3 * math.exp(-end / tau) + math.exp(-(end - t0) / tau) + math.exp(-(end - t1) / tau),
            0.0,
        ],
        rtol=1e-12,
    )


def test_exponential_frames_split_is_bit_identical():
    rng = np.random.default_rng(3)
    n_frames, n_cells, dt, tau = 50, 9, 1 / 30, 0.4
    counts = rng.poisson(0.8, (n_frames, n_cells))
    owner = np.repeat(np.arange(counts.size), counts.ravel())
    time_to_end = dt * rng.random(len(owner))
    x0 = rng.random(n_cells)
    whole, end = exponential_frames(x0, owner, time_to_end, counts.shape, dt, tau)
    cut = 23
    n_first = counts[:cut].sum()
    first, mid = exponential_frames(
        x0, owner[:n_first], time_to_end[:n_first], (cut, n_cells), dt, tau
    )
    second, end2 = exponential_frames(
        mid, owner[n_first:] - cut * n_cells, time_to_end[n_first:],
        (n_frames - cut, n_cells), dt, tau,
    )  # fmt: skip
    assert np.array_equal(np.concatenate([first, second]), whole)
    assert np.array_equal(end2, end)


def no_spike_params(fps: float, tau_rise: float, tau_decay: float) -> ActivityParams:
    return ActivityParams(
        fps=fps, bins=15, p_on=0.5, p_off=0.5, p_spike_active=0.0, p_spike_quiet=0.0,
        tau_rise_s=tau_rise, tau_decay_s=tau_decay, f0=1.0, trace_noise=0.0,
    )  # fmt: skip


def test_activity_block_state_decays_as_the_normalized_kernel():
    """A unit kick at t = 0 (state x = (1, 1)) gives the frame means of k(t)/peak."""
    fps, tau_rise, tau_decay = 20.0, 0.05, 0.5
    params = no_spike_params(fps, tau_rise, tau_decay)
    state = (np.zeros(2, bool), np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    new_state, calcium, counts = activity_block(state, 40, params, BlockStreams.keyed(0, "t", 0))
    assert counts.sum() == 0
    peak = kernel_peak(tau_rise, tau_decay)[1]
    dt = 1 / fps
    for k in range(40):
        value, _ = integrate.quad(
            lambda t: math.exp(-t / tau_decay) - math.exp(-t / tau_rise),
            k * dt, (k + 1) * dt, epsabs=0, epsrel=1e-13,
        )  # fmt: skip
        np.testing.assert_allclose(calcium[k], [value / dt / peak, 2 * value / dt / peak], 1e-10)
    np.testing.assert_allclose(
        new_state[1], np.array([1.0, 2.0]) * np.exp(-40 * dt / tau_decay), rtol=1e-12
    )
    np.testing.assert_allclose(
        new_state[2], np.array([1.0, 2.0]) * np.exp(-40 * dt / tau_rise), rtol=1e-12
    )


def test_activity_block_matches_eager_spike_train_reference():
    """Replay the same keyed draws, then integrate every spike's kernel analytically."""
    fps, bins, n_frames, n_cells = 20.0, 15, 30, 5
    params = ActivityParams(
        fps=fps, bins=bins, p_on=0.2, p_off=0.3, p_spike_active=0.4, p_spike_quiet=0.05,
        tau_rise_s=0.05, tau_decay_s=0.5, f0=1.0, trace_noise=0.0,
    )  # fmt: skip
    gate0 = np.array([True, False, True, False, False])
    xd0, xr0 = np.linspace(0.0, 2.0, n_cells), np.linspace(0.0, 1.0, n_cells)
    got_state, calcium, counts = activity_block(
        (gate0, xd0, xr0), n_frames, params, BlockStreams.keyed(9, "block", 0)
    )
    # The same draws, from the same keyed streams.
    rngs = BlockStreams.keyed(9, "block", 0)
    gate = gate_sequence(gate0, rngs.gate.random((n_frames, n_cells)), params.p_on, params.p_off)
    p = np.where(gate, params.p_spike_active, params.p_spike_quiet)
    expected_counts = rngs.spikes.binomial(bins, p)
    dt = 1 / fps
    times = _spike_times(expected_counts, bins, dt, rngs.bin_order, rngs.in_bin)
    np.testing.assert_array_equal(counts, expected_counts)
    assert counts.sum() > 50
    # Absolute spike times, in (frame, cell) order.
    frame_of, cell_of = np.divmod(np.repeat(np.arange(counts.size), counts.ravel()), n_cells)
    t_abs = frame_of * dt + times

    def frame_integral(tau, t_start, k):
        """∫ over frame k of exp(−(t − t_start)/τ) for t ≥ t_start, in closed form."""
        lo, hi = max(k * dt, t_start), (k + 1) * dt
        if hi <= lo:
            return 0.0
        return tau * (math.exp(-(lo - t_start) / tau) - math.exp(-(hi - t_start) / tau))

    peak = kernel_peak(params.tau_rise_s, params.tau_decay_s)[1]
    expected = np.zeros((n_frames, n_cells))
    for i in range(n_cells):
        mine = t_abs[cell_of == i]
        for k in range(n_frames):
            total = xd0[i] * frame_integral(0.5, 0.0, k) - xr0[i] * frame_integral(0.05, 0.0, k)
            for ts in mine:
                total += frame_integral(0.5, ts, k) - frame_integral(0.05, ts, k)
            expected[k, i] = total / dt / peak
    np.testing.assert_allclose(calcium, expected, rtol=1e-9, atol=1e-12)
    assert np.array_equal(got_state[0], gate[-1])
    end = n_frames * dt
    for j, tau, x0 in ((1, 0.5, xd0), (2, 0.05, xr0)):
        ref = x0 * math.exp(-end / tau) + np.bincount(
            cell_of, np.exp(-(end - t_abs) / tau), minlength=n_cells
        )
        np.testing.assert_allclose(got_state[j], ref, rtol=1e-10)


def test_spike_times_fall_in_distinct_bins_uniformly():
    rng = np.random.default_rng(4)
    bins, dt = 10, 1 / 30
    counts = rng.integers(0, bins + 1, (400, 6))
    counts[0] = bins  # a full frame takes every bin exactly once
    times = _spike_times(counts, bins, dt, rng, np.random.default_rng(5))
    assert len(times) == counts.sum()
    assert np.all((times >= 0) & (times < dt))
    width = dt / bins
    bin_of = np.floor(times / width).astype(int)
    owner = np.repeat(np.arange(counts.size), counts.ravel())
    for group in np.unique(owner):
        chosen = bin_of[owner == group]
        assert len(np.unique(chosen)) == len(chosen)
    np.testing.assert_array_equal(np.sort(bin_of[: bins * 6].reshape(6, bins), axis=1),
                                  np.tile(np.arange(bins), (6, 1)))  # fmt: skip
    # Uniform over the frame and within each bin.
    assert stats.kstest(times / dt, "uniform").pvalue > 1e-3
    assert stats.kstest(times / width - bin_of, "uniform").pvalue > 1e-3


# --------------------------------------------------------------------------- scan


def test_traces_do_not_depend_on_chunks():
    n_frames = 2500
    assert n_frames > 2 * SCAN_BLOCK
    spec = Spec(
        acquisition=acquisition(n_px=40, fps=20.0, duration_s=n_frames / 20.0),
        seed=3,
        steps=[
            PlaceNeurons(density_per_mm3=40_000.0, soma_radius_um=4.0),
            CellActivity(trace_noise=0.05),
        ],
    )
    assert spec.acquisition.n_frames == n_frames
    a = simulate(spec, chunks={"frame": 7}).ground_truth
    b = simulate(spec, chunks=-1).ground_truth
    assert a.n_units == round(40_000 * 0.04 * 0.04 * 0.2) == 13
    assert a.C.shape == (13, n_frames)
    assert np.array_equal(a.C.values, b.C.values)
    assert np.array_equal(a.S.values, b.S.values)
    assert a.S.values.sum() > 0


# --------------------------------------------------------------------------- statistics


def test_gate_transition_statistics():
    """Quiet cells never spike and active ones fire every bin, so S reveals the gate."""
    p_on, p_off, fps = 0.05, 0.3, 20.0
    activity = CellActivity(
        p_quiescent_to_active=p_on,
        p_active_to_quiescent=p_off,
        spike_sim_hz=300.0,
        active_rate_hz=300.0,
        quiescent_rate_hz=0.0,
    )
    bins = activity.params(fps).bins
    assert bins == 15
    _, _, S, _ = traces(activity, n_cells=2000, duration_s=20.0)
    assert set(np.unique(S)) == {0.0, float(bins)}
    gate = S == bins
    n_cells, n_frames = gate.shape
    # Fraction of active frames vs the stationary law (Markov-inflated standard error).
    pi = stationary(p_on, p_off)
    se = math.sqrt(pi * (1 - pi) * markov_mean_variance_factor(p_on, p_off) / gate.size)
    assert abs(gate.mean() - pi) < Z * se
    # Per-frame transition probabilities (Markov-chain MLE, binomial standard errors).
    prev, nxt = gate[:, :-1], gate[:, 1:]
    n_active, n_quiet = prev.sum(), (~prev).sum()
    p_off_hat = (prev & ~nxt).sum() / n_active
    p_on_hat = (~prev & nxt).sum() / n_quiet
    assert abs(p_off_hat - p_off) < Z * math.sqrt(p_off * (1 - p_off) / n_active)
    assert abs(p_on_hat - p_on) < Z * math.sqrt(p_on * (1 - p_on) / n_quiet)


def test_spike_counts_are_binomial_over_bins():
    """A gate that (almost) never switches off: counts ~ Binomial(bins, rate/(bins·fps))."""
    fps = 20.0
    activity = CellActivity(
        p_quiescent_to_active=1.0, p_active_to_quiescent=1e-9, active_rate_hz=120.0
    )
    params = activity.params(fps)
    bins, p = params.bins, params.p_spike_active
    assert (bins, p) == (15, pytest.approx(0.4))
    _, _, S, _ = traces(activity, n_cells=1000, duration_s=10.0)
    n = S.size
    mean, var = bins * p, bins * p * (1 - p)
    assert abs(S.mean() - mean) < Z * math.sqrt(var / n)
    # At most one spike per bin: the variance is binomial (a Poisson count would give 6).
    kurt_excess = (1 - 6 * p * (1 - p)) / var
    assert abs(S.var() - var) < Z * var * math.sqrt((kurt_excess + 2) / n)


def test_spike_counts_never_exceed_bins():
    # 300 Hz is the most the grid holds at 30 fps (10 bins of 1/300 s): a spike every bin;
    # a faster rate is rejected rather than clipped (tests/test_bad_input.py).
    activity = CellActivity(
        p_quiescent_to_active=0.5, p_active_to_quiescent=0.5, active_rate_hz=300.0
    )
    bins = activity.params(30.0).bins
    assert bins == 10
    assert activity.params(30.0).p_spike_active == 1.0
    _, _, S, _ = traces(activity, n_cells=500, fps=30.0, duration_s=4.0)
    assert S.max() == bins
    assert np.all(S == np.round(S))
    assert S.min() >= 0


@pytest.fixture(scope="module")
def population():
    """Default activity, higher switch-on rate for more bursts: 4000 cells × 400 frames."""
    activity = CellActivity(p_quiescent_to_active=0.02, f0=1.5)
    spec, C, S, gain = traces(activity, n_cells=4000, seed=2, duration_s=20.0)
    return activity, spec.acquisition.fps, C, S, gain


def test_mean_spikes_per_frame_matches_stationary_rates(population):
    activity, fps, _, S, _ = population
    params = activity.params(fps)
    pi = stationary(params.p_on, params.p_off)
    mu_a, mu_q = params.bins * params.p_spike_active, params.bins * params.p_spike_quiet
    expected = pi * mu_a + (1 - pi) * mu_q
    assert expected == pytest.approx(pi * 150.0 / fps + (1 - pi) * 0.6 / fps)
    # Variance of a cell's time average: binomial noise plus the Markov-correlated gate.
    binomial = pi * mu_a * (1 - params.p_spike_active) + (1 - pi) * mu_q * (
        1 - params.p_spike_quiet
    )
    gate = (
        (mu_a - mu_q) ** 2 * pi * (1 - pi) * markov_mean_variance_factor(params.p_on, params.p_off)
    )
    se = math.sqrt((binomial + gate) / S.size)
    assert abs(S.mean() - expected) < Z * se
    assert S.max() <= params.bins


def test_mean_calcium_is_rate_times_kernel_area(population):
    """Steady state: E[C/gain − f0] = spikes/s · ∫k(t)dt/peak = rate · (τd − τr)/peak."""
    activity, fps, C, S, gain = population
    params = activity.params(fps)
    calcium = C / gain[:, None] - activity.f0
    area = (activity.tau_decay_s - activity.tau_rise_s) / kernel_peak(
        activity.tau_rise_s, activity.tau_decay_s
    )[1]
    pi = stationary(params.p_on, params.p_off)
    expected_rate = pi * activity.active_rate_hz + (1 - pi) * activity.quiescent_rate_hz
    expected = expected_rate * area
    # Same relative standard error as the spike-count mean (calcium is a linear filter of
    # the spikes); spikes are ~0.5 per frame here, so 5 SE is about 4%.
    mu_a = params.bins * params.p_spike_active
    gate = mu_a**2 * pi * (1 - pi) * markov_mean_variance_factor(params.p_on, params.p_off)
    rel_se = math.sqrt((gate + pi * mu_a) / S.size) / (expected_rate / fps)
    assert abs(calcium.mean() / expected - 1) < Z * rel_se
    # ... and it agrees with the spikes actually drawn, more tightly.
    assert calcium.mean() == pytest.approx(S.mean() * fps * area, rel=0.02)


def test_brightness_gains_are_lognormal_with_mean_one(population):
    activity, _, _, _, gain = population
    n, cv = len(gain), activity.brightness_cv
    assert cv == 0.3
    sigma = math.sqrt(math.log1p(cv**2))
    # Mean: standard error cv/√n. Standard deviation: for a log-normal the excess
    # kurtosis is e^{4σ²} + 2e^{3σ²} + 3e^{2σ²} − 6, and SE(s)/s ≈ √((κ + 2)/(4n)).
    assert abs(gain.mean() - 1) < Z * cv / math.sqrt(n)
    kurt = math.exp(4 * sigma**2) + 2 * math.exp(3 * sigma**2) + 3 * math.exp(2 * sigma**2) - 6
    assert abs(gain.std(ddof=1) / gain.mean() - cv) < Z * cv * math.sqrt((kurt + 2) / (4 * n))
    assert abs(np.log(gain).std(ddof=1) - sigma) < Z * sigma / math.sqrt(2 * n)
    assert np.all(gain > 0)


def test_traces_never_fall_below_baseline(population):
    activity, _, C, _, gain = population
    assert C.dtype == np.float32
    floor = (gain * activity.f0).astype(np.float32)[:, None]
    assert np.all(floor <= C)
    # ... and quiet cells do come back to it (within 1% of the baseline somewhere).
    assert np.median(C.min(axis=1) / floor[:, 0]) < 1.01


def test_traces_open_at_steady_state(population):
    _, fps, C, _, _ = population
    head = round(0.5 * fps)
    ratio = C[:, :head].mean() / C[:, head:].mean()
    assert abs(ratio - 1) < 0.15


def test_zero_brightness_cv_gives_unit_gains():
    _, C, _, gain = traces(CellActivity(brightness_cv=0.0), n_cells=50, duration_s=1.0)
    assert np.array_equal(gain, np.ones(50))
    assert np.all(C >= np.float32(1.0))


def test_trace_noise_is_additive_and_leaves_spikes_alone():
    quiet, noisy = (
        traces(CellActivity(trace_noise=s), n_cells=500, duration_s=10.0) for s in (0.0, 0.2)
    )
    np.testing.assert_array_equal(quiet[2], noisy[2])  # spikes
    np.testing.assert_array_equal(quiet[3], noisy[3])  # gains
    diff = noisy[1].astype(np.float64) - quiet[1]
    n = diff.size
    assert abs(diff.mean()) < Z * 0.2 / math.sqrt(n)
    assert abs(diff.std() - 0.2) < Z * 0.2 / math.sqrt(2 * n) + 1e-6


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("tau_rise", "tau_decay"), [(0.5, 0.5), (0.6, 0.5)])
def test_rise_must_be_shorter_than_decay(tau_rise, tau_decay):
    with pytest.raises(ValidationError, match="tau_rise_s"):
        CellActivity(tau_rise_s=tau_rise, tau_decay_s=tau_decay)


def test_unresolvable_decay_raises_at_spec_construction():
    activity = CellActivity(tau_rise_s=0.01, tau_decay_s=0.04)  # 0.8 frames at 20 fps
    with pytest.raises(ValidationError, match="unresolvable"):
        Spec(acquisition=acquisition(fps=20.0, duration_s=1.0), steps=[PlaceNeurons(), activity])
    # One frame exactly is resolvable.
    Spec(acquisition=acquisition(fps=25.0, duration_s=1.0), steps=[PlaceNeurons(), activity])


def test_longer_recording_keeps_its_opening():
    """Extending the duration appends frames; the first frames do not change."""
    short, long = (
        simulate(
            Spec(
                acquisition=acquisition(n_px=30, fps=20.0, duration_s=seconds),
                seed=8,
                steps=[PlaceNeurons(density_per_mm3=200_000.0), CellActivity()],
            )
        ).ground_truth
        for seconds in (25.0, 50.0)
    )
    n = short.C.sizes["frame"]
    assert np.array_equal(short.S.values, long.S.values[:, :n])
    assert np.array_equal(short.C.values, long.C.values[:, :n])
