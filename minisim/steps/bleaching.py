"""Photobleaching: each cell's pool of intact fluorophore fades with the light it emits.

``dB/dt = (1 − B)/τ_turn − q·I·e(t)·B`` with ``B(0) = 1``: turnover replaces bleached
indicator, emission (the clean trace e = C) under excitation I destroys it. Over one frame
the drive is constant, so the update is exact:
``k = 1/τ_turn + q·I·e_t``, ``B_eq = (1/τ_turn)/k``, ``B ← B_eq + (B − B_eq)·exp(−k)``.
The fade is ground truth (``bleaching``); composite emits C·B (computed here, per block)
and the neuropil fades with the cells' mean B.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
from pydantic import model_validator

from ..acquisition import NonNegativeFloat, PositiveFloat
from ..engine import ScanOutput, Scene, constant, scan
from ..engine import portable_math as pm
from .base import StepSpec


class Bleaching(StepSpec):
    """Activity- and excitation-driven photobleaching (cell domain, before composite).

    Parameters
    ----------
    bleach_susceptibility : float
        Bleach rate in 1/s at unit excitation and unit emission (0 disables).
    turnover_tau_s : float
        Time constant of indicator turnover (recovery), s.
    excitation_intensity : float
        Excitation at the centre of the field, relative units; the illumination profile
        (if any) scales it at each cell's rest position.
    """

    kind: Literal["bleaching"] = "bleaching"
    order: ClassVar[float] = 30
    needs: ClassVar[tuple[str, ...]] = ("centers_um", "C")
    provides: ClassVar[tuple[str, ...]] = ("bleaching", "excitation", "bleaching_mean", "emission")
    bleach_susceptibility: NonNegativeFloat = 6.3e-6
    turnover_tau_s: PositiveFloat = 20000.0
    excitation_intensity: NonNegativeFloat = 1.0

    @model_validator(mode="after")
    def _physical(self):
        rate = self.bleach_susceptibility * self.excitation_intensity
        if rate > 1000:
            raise ValueError(
                f"bleaching.bleach_susceptibility·excitation_intensity = "
                f"{self.bleach_susceptibility:g}·{self.excitation_intensity:g} = {rate:g} /s "
                "bleaches the indicator within a millisecond, before any frame: give the rate "
                "in 1/s at unit excitation (default 6.3e-6)"
            )
        return self

    def build(self, scene: Scene) -> Scene:
        traces = scene.traces.get("C")
        if traces is None:
            return scene
        acq = scene.context.acquisition
        excitation = np.full(scene.n_cells, self.excitation_intensity)
        at_cells = scene.context.excitation_at(scene.cells["centers_um"])
        if at_cells is not None:
            excitation = excitation * at_cells
        params = BleachParams(
            per_frame_rate=acq.per_frame(self.bleach_susceptibility),
            turnover_frames=acq.frames(self.turnover_tau_s),
        )
        fade, mean, emission = scan(
            scene.layer_name("bleaching"),
            bleach_scan_step,
            init=(np.ones, scene.n_cells),
            n_frames=scene.n_frames,
            outputs=[
                ScanOutput("bleaching", (scene.n_cells, None), np.float32),
                ScanOutput("mean", (None,), np.float64),
                ScanOutput("emission", (scene.n_cells, None), np.float32),
            ],
            sequences=[(traces, 1)],
            constants=[constant(params, "bleach-params"), constant(excitation, "excitation")],
        )
        return scene.evolve(
            traces={"bleaching": fade},
            cells={"excitation": excitation},
            signals={"bleaching_mean": mean, "emission": emission},
        )


@dataclass(frozen=True)
class BleachParams:
    per_frame_rate: float  # q, per frame at unit excitation and emission
    turnover_frames: float  # τ_turn in frames


def bleach_scan_step(pool, block, start, stop, emission, params: BleachParams, excitation):
    """Advance each cell's intact fraction over frames [start, stop); output B before each update."""
    pool = np.array(pool, float)
    out = np.empty((len(pool), stop - start))
    recovery = 1.0 / params.turnover_frames
    dose = params.per_frame_rate * excitation
    for k in range(stop - start):
        out[:, k] = pool
        rate = recovery + dose * emission[:, k]
        equilibrium = np.where(rate > 0, recovery / np.where(rate > 0, rate, 1.0), 1.0)
        pool = equilibrium + (pool - equilibrium) * pm.exp(-rate)
    out = out.astype(np.float32)
    # The cells' mean fade per frame (what the neuropil fades with), from the stored values;
    # and the light the cells emit, C·B, from the stored fade.
    return pool, out, out.mean(axis=0, dtype=np.float64), emission * out


def bleaching_floor(rate: float, intensity: float, emission: float, turnover_tau: float) -> float:
    """The fixed point of the pool under constant drive: ``k_t/(k_t + q·I·e)`` with k_t = 1/τ."""
    if min(rate, intensity, emission, turnover_tau) < 0:
        raise ValueError("bleaching_floor takes non-negative rate, intensity, emission and tau")
    recovery = 1.0 / turnover_tau if turnover_tau > 0 else 0.0
    denominator = recovery + rate * intensity * emission
    return 1.0 if denominator == 0 else recovery / denominator


def dark_recovery(pool: float, time: float, turnover_tau: float):
    """Recovery in the dark: ``1 − (1 − B0)·exp(−t/τ)``."""
    if turnover_tau <= 0:
        raise ValueError(f"turnover_tau={turnover_tau}: must be > 0")
    return 1 - (1 - pool) * pm.exp(-np.asarray(time, float) / turnover_tau)
