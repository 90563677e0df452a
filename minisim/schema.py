"""The recording's schema: every quantity steps exchange, and every name of the Dataset.

A :class:`Quantity` is one named thing a step provides and later steps (or the recording)
read: per-cell arrays, footprints, (cell, frame) traces, per-frame signals, static fields,
the focal plane. Steps declare the names they ``needs`` and ``provides``; the spec checks
that every need has a provider before anything is built, and the engine checks that each
step provided what it declared.

Quantities with a ``stored`` role are the recording's Dataset: their dims, dtype, units and
description are the contract documented in ``docs/reference/dataset.md`` (a test holds the
page against this module), written as each variable's ``units``/``description`` attributes,
and kept by every store and exporter. A step from another package declares its own
quantities (``StepSpec.provides`` accepts :class:`Quantity` objects), and they join the
schema when the step is registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Where a quantity lives while the recording is built (a mapping of the engine's scene).
Place = Literal["cells", "footprints", "traces", "signals", "truth", "coords", "focal", "movie"]
#: How a quantity appears in the Dataset: a data variable, a coordinate, or not at all.
Role = Literal["data", "coord", "internal"]


@dataclass(frozen=True)
class Quantity:
    """One named quantity: what it is, where it lives, and how the Dataset stores it.

    ``label`` is the phrase used in messages ("cell positions"); ``dtype`` may name the
    rule when it depends on the spec (``"counts"`` for the movie).
    """

    name: str
    place: Place
    label: str
    dims: tuple[str, ...] = ()
    dtype: str = "float64"
    units: str = ""
    role: Role = "coord"
    description: str = ""

    @property
    def stored(self) -> bool:
        return self.role != "internal"


def _q(*args, **kwargs) -> Quantity:
    return Quantity(*args, **kwargs)


#: Quantities of the recording itself (the engine provides them whatever the steps).
CORE = (
    _q("observed", "movie", "the movie", ("frame", "y", "x"), "counts", "ADC counts or intensity",
       "data", "The movie: counts with a sensor, scene intensity without."),
    _q("A_planted", "footprints", "planted footprints", ("cell", "y", "x"), "float32",
       "peak 1 per cell", "data", "Sharp footprints as placed, in the field of view at rest."),
    _q("A_observed", "footprints", "observed footprints", ("cell", "y", "x"), "float32",
       "planted footprint x light factor", "data",
       "Footprints as the optics render them (the planted ones without optics)."),
    _q("frame", "coords", "frame index", ("frame",), "int64", "index"),
    _q("time_s", "coords", "frame times", ("frame",), "float64", "s",
       description="Start of each frame's exposure."),
    _q("y_um", "coords", "pixel positions", ("y",), "float64", "um"),
    _q("x_um", "coords", "pixel positions", ("x",), "float64", "um"),
    _q("cell", "coords", "cell index", ("cell",), "int64", "index"),
    _q("depth_um", "cells", "cell depths", ("cell",), "float64", "um"),
    _q("in_fov", "cells", "in the field at rest", ("cell",), "bool",
       description="The planted footprint touches the field of view at rest."),
    _q("detectable", "cells", "detectability", ("cell",), "bool",
       description="The cell's largest transient clears the noise (or, without a sensor, "
                   "it is in the field, has a trace and is in focus)."),
)  # fmt: skip

#: Quantities the built-in steps provide, by name (each step lists the names it provides).
STEP_QUANTITIES = (
    # place_neurons
    _q("centers_um", "cells", "cell positions", ("cell", "axis"), "float64", "um",
       description="Centre as (z, y, x): depth below the surface, then position."),
    _q("population", "cells", "cell populations", ("cell",), "int64", "index"),
    _q("soma_radius_um", "cells", "soma radii", ("cell",), "float64", "um"),
    _q("planted", "footprints", "planted footprints", role="internal"),
    # cell_activity
    _q("amplitude", "cells", "cell brightness gains", ("cell",), "float64", "relative"),
    _q("C", "traces", "calcium traces", ("cell", "frame"), "float32", "peak of one spike = 1",
       "data", "Clean calcium trace, frame-averaged over the exposure."),
    _q("S", "traces", "spike counts", ("cell", "frame"), "float32", "spikes per frame", "data"),
    _q("population_calcium", "signals", "the population's summed calcium", ("frame",),
       role="internal"),
    _q("calcium_extremes", "signals", "per-block calcium extremes", role="internal"),
    # bleaching
    _q("bleaching", "traces", "bleaching fade", ("cell", "frame"), "float32", "fraction", "data",
       "Each cell's intact fluorophore at the start of the frame."),
    _q("excitation", "cells", "excitation at the cells", ("cell",), "float64", "relative"),
    _q("bleaching_mean", "signals", "mean bleaching", ("frame",), role="internal"),
    _q("emission", "signals", "bleached emission", ("cell", "frame"), role="internal"),
    # optics
    _q("observed_sigma_px", "cells", "blur widths", ("cell",), "float64", "px"),
    _q("observed_gain", "cells", "light factors", ("cell",), "float64", "relative"),
    _q("optical_brightness", "cells", "point-source brightness", ("cell",), "float64",
       "relative"),
    _q("observed_peak", "cells", "footprint peaks", ("cell",), "float64", "footprint units"),
    _q("in_focus", "cells", "focus flags", ("cell",), "bool"),
    _q("observed", "footprints", "observed footprints", role="internal"),
    _q("focal_depth_um", "focal", "the focal plane", (), "float64", "um",
       description="The resolved focal plane."),
    # neuropil
    _q("neuropil_spatial", "truth", "neuropil components", ("component", "y", "x"), "float64",
       "dimensionless", "data"),
    _q("neuropil_temporal", "truth", "neuropil envelopes", ("component", "frame"), "float32",
       "dimensionless", "data"),
    _q("neuropil_population", "coords", "the neuropil's population driver", ("frame",),
       "float64", "dimensionless"),
    # vasculature
    _q("vessel_overlap_fraction", "cells", "vessel overlap", ("cell",), "float64", "fraction"),
    _q("vessel_transmission", "cells", "vessel transmission", ("cell",), "float64", "fraction"),
    _q("vasculature_mask", "coords", "the vessel mask", ("y", "x"), "float64", "transmission"),
    # brain_motion
    _q("shift_y", "coords", "motion shifts", ("frame",), "float64", "px"),
    _q("shift_x", "coords", "motion shifts", ("frame",), "float64", "px"),
    _q("nonrigid_y", "truth", "non-rigid node displacements", ("frame", "node_y", "node_x"),
       "float64", "px", "data",
       "Non-rigid displacement along y of each control node (a cubic B-spline's "
       "coefficients); gt.displacement interpolates it to every pixel."),
    _q("nonrigid_x", "truth", "non-rigid node displacements", ("frame", "node_y", "node_x"),
       "float64", "px", "data", "As nonrigid_y, along x."),
    _q("node_y", "coords", "control node rows", ("node_y",), "float64", "px",
       description="Row of each control node of the non-rigid field, in field pixels."),
    _q("node_x", "coords", "control node columns", ("node_x",), "float64", "px",
       description="Column of each control node of the non-rigid field, in field pixels."),
    # static fields
    _q("illumination", "coords", "the illumination profile", ("y", "x"), "float64", "relative"),
    _q("vignette", "coords", "the vignette", ("y", "x"), "float64", "relative"),
    _q("leakage", "coords", "the leakage glow", ("y", "x"), "float64", "scene intensity"),
)  # fmt: skip

_BY_NAME: dict[tuple[str, str], Quantity] = {}


def register(quantity: Quantity) -> Quantity:
    """Make a quantity known (by place and name); re-registering the same one is a no-op."""
    key = (quantity.place, quantity.name)
    known = _BY_NAME.get(key)
    if known is not None and known != quantity:
        raise ValueError(f"quantity {quantity.name!r} ({quantity.place}) is declared twice, "
                         "differently: give the new one another name")  # fmt: skip
    _BY_NAME[key] = quantity
    return quantity


for _quantity in (*CORE, *STEP_QUANTITIES):
    register(_quantity)


def quantity(name: str, place: str | None = None) -> Quantity:
    """The quantity called ``name`` (``"place.name"`` or ``place=`` when names repeat
    across places, as ``"footprints.observed"`` and the movie ``"observed"`` do)."""
    if place is None and "." in name:
        place, name = name.split(".", 1)
    found = [q for (p, n), q in _BY_NAME.items() if n == name and place in (None, p)]
    if not found:
        raise KeyError(f"no quantity named {name!r}")
    if len(found) > 1:
        stored = [q for q in found if q.stored]
        if len(stored) == 1:
            return stored[0]
        raise KeyError(f"{name!r} names several quantities: pass place= one of "
                       f"{sorted(q.place for q in found)}")  # fmt: skip
    return found[0]


def dataset_schema() -> dict[str, Quantity]:
    """Every name a recording's Dataset may hold, with its declared dims, dtype and units."""
    return {q.name: q for q in _BY_NAME.values() if q.stored}
