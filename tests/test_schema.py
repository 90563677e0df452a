"""The schema is the contract: the Dataset reference page and real recordings agree with it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from minisim import (
    BrainMotion,
    DroppedFrames,
    ImageSensor,
    Spec,
    Vasculature,
    VesselDilation,
    VesselLayer,
    simulate,
)
from minisim.schema import dataset_schema
from minisim.steps import registered_steps

from .conftest import full_chain_steps, small_acquisition

PAGE = Path(__file__).resolve().parents[1] / "docs" / "reference" / "dataset.md"
ROW = re.compile(r"^\| (`[^|]+`) \| ([^|]*) \| ([^|]*) \|", re.M)


def page_rows() -> dict[str, tuple[str, str]]:
    """name → (dims cell, dtype cell) for every variable row of the reference page."""
    rows = {}
    variables = PAGE.read_text().split("## Attributes")[0]
    for names, dims, dtype in ROW.findall(variables):
        for name in re.findall(r"`([^`]+)`", names):
            rows[name] = (dims.strip(), dtype.strip())
    return rows


def builtin_schema():
    builtin = {q.name for c in registered_steps() if c.__module__.startswith("minisim.")
               for q in c.provided_quantities()}  # fmt: skip
    from minisim.schema import CORE

    builtin |= {q.name for q in CORE}
    return {n: q for n, q in dataset_schema().items() if n in builtin}


def test_every_stored_quantity_is_on_the_reference_page_with_its_dims():
    rows = page_rows()
    for name, q in builtin_schema().items():
        assert name in rows, f"docs/reference/dataset.md has no row for {name!r}"
        dims, dtype = rows[name]
        if "/" not in dims:  # rows listing several names give "y / x"
            assert dims == (", ".join(q.dims) or "()"), (name, dims, q.dims)
        if q.dtype != "counts" and "`" not in dtype and " " not in dtype:
            assert dtype == q.dtype, (name, dtype, q.dtype)


def test_every_row_of_the_reference_page_is_in_the_schema():
    schema = dataset_schema()
    extra = {n for n in page_rows() if n not in schema and not n.startswith("stage_")
             and n not in ("y", "x", "axis", "component", "vessel_layer", "canvas_y", "canvas_x")}  # fmt: skip
    assert not extra, f"dataset.md documents names the schema lacks: {sorted(extra)}"


def test_a_full_recording_matches_the_schema():
    # Every built-in step, with the realism effects on: breathing vessels, a real CMOS
    # sensor, dropped frames and non-rigid motion.
    steps = [s for s in full_chain_steps() if s.kind not in ("vasculature", "brain_motion")]
    steps += [BrainMotion(motion_amplitude_um=1.0, nonrigid_um=0.5, nonrigid_scale_um=20.0)]
    steps += [Vasculature(enabled=True, layers=[VesselLayer()], dilation=VesselDilation()),
              DroppedFrames(drop_probability=0.1, timestamp_jitter_s=0.001)]  # fmt: skip
    acq = small_acquisition(px=40, duration_s=1.0)
    real_sensor = ImageSensor(**{**acq.image_sensor.model_dump(), "black_level_adu": 5.0,
                                 "dark_current_e_per_s": 10.0, "prnu": 0.01,
                                 "hot_pixel_fraction": 0.01, "row_noise_e": 1.0})  # fmt: skip
    acq = acq.model_copy(update={"image_sensor": real_sensor})
    ds = simulate(Spec(acquisition=acq, seed=1, steps=steps)).dataset
    schema = builtin_schema()
    for name, var in ds.variables.items():
        if name in ("y", "x", "axis"):
            continue
        assert name in schema, f"the recording holds {name!r}, which the schema does not declare"
        q = schema[name]
        assert var.dims == q.dims, (name, var.dims, q.dims)
        if q.dtype != "counts":
            assert var.dtype == np.dtype(q.dtype), (name, var.dtype, q.dtype)
        assert var.attrs.get("units") == q.units, (name, var.attrs.get("units"))
    assert not {n for n in schema if n not in ds.variables}, "a full chain provides every name"
