"""The step catalog: every kind, its stage name, domain and canonical rank.

The order is the physical order light takes: cells are placed and given activity, their
light is degraded by optics, composited into tissue, the tissue moves, the scope's static
fields apply, and the sensor digitizes. Specs are sorted into this order, so listing
order never matters.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StepInfo:
    kind: str
    stage: str
    domain: str  # "cell", "tissue", "motion" or "sensor"
    #: Steps this one cannot build without (a spec lacking them is an error).
    requires: tuple[str, ...] = ()


CATALOG: tuple[StepInfo, ...] = (
    StepInfo("place_neurons", "place_neurons", "cell"),
    StepInfo("cell_activity", "cell_activity", "cell", ("place_neurons",)),
    StepInfo("bleaching", "bleaching", "cell", ("cell_activity",)),
    StepInfo("optics", "optics", "cell", ("place_neurons",)),
    # Without cells or traces composite draws nothing: a warning, not an error.
    StepInfo("composite", "cells_only", "tissue"),
    # Without cell activity the neuropil follows its drift alone.
    StepInfo("neuropil", "neuropil", "tissue"),
    # Vessels shade the cells and focus with them (checked only when enabled).
    StepInfo("vasculature", "vasculature", "tissue", ("place_neurons",)),
    StepInfo("brain_motion", "brain_motion", "motion"),
    StepInfo("illumination_profile", "illumination_profile", "sensor"),
    StepInfo("vignette", "vignette", "sensor"),
    StepInfo("leakage", "leakage", "sensor"),
    StepInfo("sensor", "sensor", "sensor"),
)

INFO = {info.kind: info for info in CATALOG}
#: What a required step provides, for the error message when it is missing.
PROVIDES = {
    "place_neurons": "cell positions",
    "cell_activity": "calcium traces",
}
RANK = {info.kind: rank for rank, info in enumerate(CATALOG)}
#: Names accepted by ``until=`` and ``Recording.stage``: kinds and stage names.
STAGE_ALIASES = {info.kind: info.stage for info in CATALOG} | {
    info.stage: info.stage for info in CATALOG
}


def canonical_order(kinds) -> list[str]:
    """Kinds sorted by catalog rank (stable; unknown kinds go last)."""
    return sorted(kinds, key=lambda kind: RANK.get(kind, len(CATALOG)))
