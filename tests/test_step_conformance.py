"""Every registered step, built-in or from an installed plugin, passes the conformance checks."""

from __future__ import annotations

import pytest

from minisim import BrainMotion, DroppedFrames, Vasculature, VesselLayer
from minisim.conformance import StepConformance
from minisim.steps import registered_steps

#: Steps whose defaults do nothing (or suit a larger field), configured for the checks.
ACTIVE = {
    "brain_motion": BrainMotion(motion_amplitude_um=1.0, max_shift_um=2.0),
    "vasculature": Vasculature(enabled=True, layers=[VesselLayer()]),
    "dropped_frames": DroppedFrames(drop_probability=0.2, dropped=(3,), timestamp_jitter_s=0.001),
}


@pytest.fixture(params=registered_steps(), ids=lambda cls: cls.kind_name())
def conformance(request):
    cls = request.param
    step = ACTIVE.get(cls.kind_name(), None) or cls()
    return type(f"Test{cls.__name__}", (StepConformance,), {"step": step})()


CHECKS = [name for name in dir(StepConformance) if name.startswith("test_")]


@pytest.mark.parametrize("check", CHECKS)
def test_step_conformance(conformance, check):
    getattr(conformance, check)()
